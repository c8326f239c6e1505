package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// IndexFile is the name of the index of a sharded checkpoint.
const IndexFile = "model.safetensors.index.json"

// Index is the JSON index of a sharded checkpoint.
type Index struct {
	Metadata  map[string]any    `json:"metadata,omitempty"`
	WeightMap map[string]string `json:"weight_map"`
}

// Dir is the set of safetensors files of a model folder, addressed by tensor name.
type Dir struct {
	files  []*File
	byName map[string]*File
}

// OpenDir opens the checkpoint in dir: model.safetensors.index.json when present (sharded),
// otherwise every *.safetensors file in the folder (usually just model.safetensors).
func OpenDir(dir string) (*Dir, error) {
	d := &Dir{byName: map[string]*File{}}
	idxPath := filepath.Join(dir, IndexFile)
	raw, err := os.ReadFile(idxPath)
	switch {
	case err == nil:
		var idx Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("safetensors: parse %s: %w", idxPath, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("safetensors: %s has an empty weight_map", idxPath)
		}
		shards := map[string]*File{}
		names := make([]string, 0, len(idx.WeightMap))
		for name := range idx.WeightMap {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			shard := idx.WeightMap[name]
			if filepath.Base(shard) != shard {
				d.Close()
				return nil, fmt.Errorf("safetensors: %s: shard name %q must be a plain file name", idxPath, shard)
			}
			f, ok := shards[shard]
			if !ok {
				f, err = Open(filepath.Join(dir, shard))
				if err != nil {
					d.Close()
					return nil, err
				}
				shards[shard] = f
				d.files = append(d.files, f)
			}
			if !f.Has(name) {
				d.Close()
				return nil, fmt.Errorf("safetensors: index says %q is in %s, but it is not", name, shard)
			}
			d.byName[name] = f
		}
		return d, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("safetensors: no *.safetensors files in %s", dir)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.files = append(d.files, f)
		for _, name := range f.Names() {
			if prev, dup := d.byName[name]; dup {
				d.Close()
				return nil, fmt.Errorf("safetensors: tensor %q is in both %s and %s", name, prev.Path(), p)
			}
			d.byName[name] = f
		}
	}
	return d, nil
}

// Names returns all tensor names, sorted.
func (d *Dir) Names() []string {
	names := make([]string, 0, len(d.byName))
	for n := range d.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether a tensor of that name exists.
func (d *Dir) Has(name string) bool {
	_, ok := d.byName[name]
	return ok
}

// Tensor returns the named tensor, aliasing its file's mapping.
func (d *Dir) Tensor(name string) (Tensor, error) {
	f, ok := d.byName[name]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors: tensor %q not found", name)
	}
	return f.Tensor(name)
}

// Close unmaps every file.
func (d *Dir) Close() error {
	var errs []error
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	d.files, d.byName = nil, nil
	return errors.Join(errs...)
}

// WriteSharded writes tensors into dir as shards of at most maxShardBytes each (a single tensor
// larger than that gets a shard of its own), named like transformers names them
// (model-00001-of-00003.safetensors), plus model.safetensors.index.json. With one shard it writes
// a plain model.safetensors and no index.
func WriteSharded(dir string, tensors []Tensor, maxShardBytes int64, metadata map[string]string) error {
	sorted := make([]Tensor, len(tensors))
	copy(sorted, tensors)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var shards [][]Tensor
	var cur []Tensor
	var curBytes, total int64
	for _, t := range sorted {
		n := int64(len(t.Data))
		total += n
		if len(cur) > 0 && curBytes+n > maxShardBytes {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, t)
		curBytes += n
	}
	if len(cur) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	if len(shards) == 1 {
		return WriteFile(filepath.Join(dir, "model.safetensors"), shards[0], metadata)
	}
	idx := Index{Metadata: map[string]any{"total_size": total}, WeightMap: map[string]string{}}
	for i, shard := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := WriteFile(filepath.Join(dir, name), shard, metadata); err != nil {
			return err
		}
		for _, t := range shard {
			idx.WeightMap[t.Name] = name
		}
	}
	js, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: encode index: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFile), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

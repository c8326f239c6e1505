// Package runtime decides where the student engine runs: GoMLX's pure-Go backend on the CPU, or
// XLA on an NVIDIA GPU through the CUDA PJRT plugin. It finds the GPU (NVML), installs the GPU
// runtime on request (the PJRT plugin and NVIDIA libraries, from pinned wheels) and produces the
// environment an engine worker process needs to use it.
package runtime

import (
	"fmt"
	"log/slog"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NVML is the part of NVIDIA's management library used to find GPUs. nvml.New() provides it;
// tests use go-nvml's mock server.
type NVML interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	SystemGetDriverVersion() (string, nvml.Return)
	SystemGetCudaDriverVersion() (int, nvml.Return)
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
}

// GPU is one NVIDIA device.
type GPU struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	UUID  string `json:"uuid,omitempty"`
	// MemoryTotal and MemoryFree are bytes.
	MemoryTotal uint64 `json:"memory_total"`
	MemoryFree  uint64 `json:"memory_free"`
	// ComputeMajor and ComputeMinor are the CUDA compute capability (9.0 for an H100).
	ComputeMajor int `json:"compute_major,omitempty"`
	ComputeMinor int `json:"compute_minor,omitempty"`
}

// Info is what Detect found.
type Info struct {
	// Present is true when at least one GPU answered.
	Present bool `json:"present"`
	// Reason says why no GPU was found (no driver, no device).
	Reason string `json:"reason,omitempty"`
	// Driver is the NVIDIA driver version ("550.54.15").
	Driver string `json:"driver,omitempty"`
	// CUDA is the newest CUDA version the driver supports, as 1000*major + 10*minor (12040).
	CUDA    int   `json:"cuda,omitempty"`
	Devices []GPU `json:"devices,omitempty"`
}

// CUDAVersion formats CUDA as "12.4" ("" when unknown).
func (i Info) CUDAVersion() string {
	if i.CUDA <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", i.CUDA/1000, i.CUDA%1000/10)
}

// CUDAMajor is the driver's CUDA major version (0 when unknown).
func (i Info) CUDAMajor() int { return i.CUDA / 1000 }

// Summary is a one-line description for logs and the UI.
func (i Info) Summary() string {
	if !i.Present {
		return "no NVIDIA GPU (" + i.Reason + ")"
	}
	d := i.Devices[0]
	s := fmt.Sprintf("%s (%.0f GiB)", d.Name, float64(d.MemoryTotal)/(1<<30))
	if len(i.Devices) > 1 {
		s = fmt.Sprintf("%d GPUs, first %s", len(i.Devices), s)
	}
	return fmt.Sprintf("%s, driver %s, CUDA %s", s, i.Driver, i.CUDAVersion())
}

// DetectSystem looks for GPUs through the system's NVML library.
func DetectSystem(log *slog.Logger) Info { return Detect(nvml.New(), log) }

// Detect asks lib for the GPUs. Anything but success from Init means "no GPU", and then nothing
// else is called: NVML functions after a failed Init can kill the process.
func Detect(lib NVML, log *slog.Logger) Info {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		log.Debug("NVML unavailable", "result", ret.Error())
		return Info{Reason: "NVIDIA driver not available: " + ret.Error()}
	}
	defer func() {
		if ret := lib.Shutdown(); ret != nvml.SUCCESS {
			log.Debug("NVML shutdown", "result", ret.Error())
		}
	}()

	var info Info
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		info.Driver = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		info.CUDA = v
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		info.Reason = "cannot count GPUs: " + ret.Error()
		return info
	}
	for i := range n {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			// A device the driver cannot reach (fallen off the bus, no permission) is skipped.
			log.Warn("GPU not reachable", "index", i, "result", ret.Error())
			continue
		}
		g := GPU{Index: i}
		if g.Name, ret = dev.GetName(); ret != nvml.SUCCESS {
			g.Name = "NVIDIA GPU"
		}
		if uuid, ret := dev.GetUUID(); ret == nvml.SUCCESS {
			g.UUID = uuid
		}
		if mem, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryTotal, g.MemoryFree = mem.Total, mem.Free
		}
		if major, minor, ret := dev.GetCudaComputeCapability(); ret == nvml.SUCCESS {
			g.ComputeMajor, g.ComputeMinor = major, minor
		}
		info.Devices = append(info.Devices, g)
	}
	info.Present = len(info.Devices) > 0
	if !info.Present {
		info.Reason = "the NVIDIA driver reports no GPU"
	}
	return info
}

// Command schemagen writes the JSON Schema of the /api types to stdout. The frontend turns it into
// TypeScript (json-schema-to-typescript), so the UI's types always match the Go structs.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"

	"github.com/invopop/jsonschema"

	"opentracy/backend/api"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run() error {
	enums := map[reflect.Type][]string{}
	for zero, values := range api.Enums() {
		enums[reflect.TypeOf(zero)] = values
	}
	r := &jsonschema.Reflector{
		// Every field without omitempty is required, as encoding/json always writes it.
		RequiredFromJSONSchemaTags: false,
		AllowAdditionalProperties:  false,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeFor[json.RawMessage]() {
				return &jsonschema.Schema{} // any JSON value: "unknown" in TypeScript
			}
			values, ok := enums[t]
			if !ok {
				return nil
			}
			s := &jsonschema.Schema{Type: "string", Title: t.Name()}
			for _, v := range values {
				s.Enum = append(s.Enum, v)
			}
			return s
		},
	}
	root := &jsonschema.Schema{
		Version:     jsonschema.Version,
		Title:       "ApiTypes",
		Type:        "object",
		Definitions: jsonschema.Definitions{},
		Properties:  jsonschema.NewProperties(),
	}
	for _, v := range api.Types() {
		s := r.Reflect(v)
		for name, def := range s.Definitions {
			def.Title = name
			root.Definitions[name] = def
		}
		name := reflect.TypeOf(v).Name()
		if _, ok := root.Definitions[name]; !ok {
			s.Version, s.ID = "", ""
			s.Title = name
			root.Definitions[name] = s
		}
		root.Properties.Set(name, &jsonschema.Schema{Ref: "#/$defs/" + name})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(root)
}

package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"opentracy/gpu/runtime"
)

func TestEngineAndHubFromFileAndEnvironment(t *testing.T) {
	file := writeConfig(t, `engine:
  backend: xla:cuda
  pjrt_plugin: /opt/pjrt/xla_cuda_plugin.so
  nvidia_lib_dir: /opt/pjrt/nvidia
  wheel_mirror: https://mirror.internal/packages
huggingface:
  endpoint: https://hub.internal
  token: hf_from_the_file
`)
	cfg, err := Load(Flags{ConfigFile: file}, envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Engine{
		Config:      runtime.Config{Backend: "xla:cuda", PluginPath: "/opt/pjrt/xla_cuda_plugin.so", NvidiaLibDir: "/opt/pjrt/nvidia"},
		WheelMirror: "https://mirror.internal/packages",
	}
	if diff := cmp.Diff(want, cfg.Engine); diff != "" {
		t.Errorf("engine (-want +got):\n%s", diff)
	}
	if cfg.HuggingFace != (HuggingFace{Endpoint: "https://hub.internal", Token: "hf_from_the_file"}) {
		t.Errorf("huggingface = %+v", cfg.HuggingFace)
	}

	cfg, err = Load(Flags{ConfigFile: file}, envOf(map[string]string{"HOME": "/h",
		EnvEngineBackend: "go", EnvHuggingFaceEndpoint: "http://127.0.0.1:9999", EnvHuggingFaceToken: "hf_env"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Engine.Backend != "go" || cfg.HuggingFace.Endpoint != "http://127.0.0.1:9999" || cfg.HuggingFace.Token != "hf_env" {
		t.Errorf("environment did not win: engine %+v, huggingface endpoint %q", cfg.Engine, cfg.HuggingFace.Endpoint)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg.HuggingFace, cfg.HuggingFace, cfg.HuggingFace); strings.Contains(s, "hf_env") {
		t.Errorf("the Hub token printed: %s", s)
	}
}

func TestEngineErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"backend", "engine:\n  backend: cuda\n", `engine backend "cuda": want auto`},
		{"mirror", "engine:\n  wheel_mirror: mirror.internal\n", `engine wheel_mirror "mirror.internal": want an http(s) URL`},
		{"endpoint", "huggingface:\n  endpoint: ftp://hub\n", `huggingface endpoint "ftp://hub": want an http(s) URL`},
		{"misspelt key", "engine:\n  plugin: /x.so\n", "field plugin not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Flags{ConfigFile: writeConfig(t, tt.yaml)}, envOf(map[string]string{"HOME": "/h"}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want it to contain %q", err, tt.want)
			}
		})
	}
}

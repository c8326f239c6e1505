package runtime_test

import (
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"

	"opentracy/gpu/runtime"
)

func TestDetectFindsGPUs(t *testing.T) {
	info := runtime.Detect(dgxh100.New(), nil)
	if !info.Present || len(info.Devices) != 8 {
		t.Fatalf("info %+v", info)
	}
	if info.Driver != "550.54.15" || info.CUDA != 12040 || info.CUDAVersion() != "12.4" || info.CUDAMajor() != 12 {
		t.Fatalf("driver %q, CUDA %d (%s)", info.Driver, info.CUDA, info.CUDAVersion())
	}
	d := info.Devices[3]
	if d.Index != 3 || !strings.Contains(d.Name, "H100") || d.MemoryTotal < 79<<30 || d.ComputeMajor != 9 || d.UUID == "" {
		t.Fatalf("device %+v", d)
	}
	if s := info.Summary(); !strings.Contains(s, "8 GPUs") || !strings.Contains(s, "H100") || !strings.Contains(s, "CUDA 12.4") {
		t.Fatalf("summary %q", s)
	}
}

func TestDetectCallsNothingAfterAFailedInit(t *testing.T) {
	// Every function but Init is nil: the mock panics if Detect calls one.
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	info := runtime.Detect(lib, nil)
	if info.Present || !strings.Contains(info.Reason, "driver not available") {
		t.Fatalf("info %+v", info)
	}
	if len(lib.InitCalls()) != 1 {
		t.Fatalf("Init called %d times", len(lib.InitCalls()))
	}
	if s := info.Summary(); !strings.HasPrefix(s, "no NVIDIA GPU") {
		t.Fatalf("summary %q", s)
	}
}

func TestDetectWithADriverButNoDevice(t *testing.T) {
	lib := &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "580.65.06", nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 13000, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return 1, nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(int) (nvml.Device, nvml.Return) {
			return nil, nvml.ERROR_GPU_IS_LOST
		},
	}
	info := runtime.Detect(lib, nil)
	if info.Present || info.Driver != "580.65.06" || info.CUDAVersion() != "13.0" || info.Reason == "" {
		t.Fatalf("info %+v", info)
	}
	if len(lib.ShutdownCalls()) != 1 {
		t.Fatal("NVML not shut down after a successful Init")
	}
}

func TestDetectSystemDoesNotCrashWithoutADriver(t *testing.T) {
	info := runtime.DetectSystem(nil)
	if info.Present {
		t.Logf("GPU found: %s", info.Summary())
	} else if info.Reason == "" {
		t.Fatal("no GPU and no reason")
	}
}

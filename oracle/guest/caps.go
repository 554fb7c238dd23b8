package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"tailsim/oracle/job"
)

// The capabilities that make a BPF load privileged: bpf_capable() is
// CAP_BPF or CAP_SYS_ADMIN, perfmon_capable() (allow_ptr_leaks,
// bypass_spec_v1/v4) CAP_PERFMON or CAP_SYS_ADMIN (include/linux/
// capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// capHeader and capData are struct __user_cap_header_struct and
// __user_cap_data_struct, version 3 (two data words: capabilities 0–31
// and 32–63).
type capHeader struct {
	version uint32
	pid     int32
}

type capData struct{ effective, permitted, inheritable uint32 }

const capVersion3 = 0x20080522

// asUser lowers the BPF capabilities from the effective set of every
// thread (capabilities are per thread, and the Go runtime may make the
// bpf() call on any), runs f, and raises them again from the permitted
// set: a load inside f is a user's load. The agent is built without cgo,
// which AllThreadsSyscall needs.
func asUser(f func() error) error {
	hdr := capHeader{version: capVersion3}
	var data [2]capData
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capget: %v", e)
	}
	set := func(d [2]capData) error {
		h := capHeader{version: capVersion3}
		if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&d[0])), 0); e != 0 {
			return fmt.Errorf("capset: %v", e)
		}
		return nil
	}
	lowered := data
	for _, c := range []uint{capSysAdmin, capPerfmon, capBPF} {
		lowered[c/32].effective &^= 1 << (c % 32)
	}
	// A user's load needs unprivileged BPF allowed (Debian's default is
	// 2: disabled, and root may set it back to 0).
	if err := os.WriteFile("/proc/sys/kernel/unprivileged_bpf_disabled", []byte("0"), 0); err != nil {
		return fmt.Errorf("allowing unprivileged BPF: %w", err)
	}
	if err := set(lowered); err != nil {
		return err
	}
	// Raised again even when f panics (guarded recovers, and the next
	// scenario must load as root); an agent that cannot raise them stops
	// the boot, which the host reports, rather than load the rest as a
	// user.
	defer func() {
		if err := set(data); err != nil {
			say(job.Result{Kind: job.Failed, Err: "raising the capabilities again: " + err.Error()})
			powerOff()
		}
	}()
	return f()
}

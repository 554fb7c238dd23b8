package oracle

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"tailsim/oracle/job"
)

// Machine is a QEMU guest for one arch: the kernel to boot and the agent
// that runs as its PID 1.
type Machine struct {
	Arch   string // x86_64 or arm64
	Kernel string // the vmlinuz to boot
	Guest  string // the static guest agent built for Arch
	// Module, when set, is the kernel's lib/test_bpf module (TestBPFModule
	// finds it beside a Debian package's vmlinuz): the guest runs its
	// tail-call suite after the scenarios.
	Module string
	// Cmdline are kernel parameters added to the boot's own (x86's
	// spectre_v2=off, which changes what the JIT emits for an indirect
	// jump).
	Cmdline []string
	Timeout time.Duration
	// Log, when set, receives everything the guest's console printed.
	Log io.Writer
}

// SpectreV2 are the kernel parameters of each x86-64 boot tailsim oracle
// -spectre-v2 names (Documentation/admin-guide/kernel-parameters.txt,
// spectre_v2=): the mitigations 6.1's emit_indirect_jump() emits
// differently for. "auto" is the kernel's own choice.
var SpectreV2 = map[string][]string{"auto": nil, "off": {"spectre_v2=off"}, "lfence": {"spectre_v2=retpoline,lfence"}}

// TestBPFModule is lib/test_bpf's module for the kernel vmlinuz, where a
// kernel package unpacked with dpkg-deb puts it (boot/vmlinuz-VERSION and
// lib/modules/VERSION/kernel/lib/test_bpf.ko), or "" when it is not there.
func TestBPFModule(vmlinuz string) string {
	version, ok := strings.CutPrefix(filepath.Base(vmlinuz), "vmlinuz-")
	if !ok {
		return ""
	}
	p := filepath.Join(filepath.Dir(vmlinuz), "..", "lib", "modules", version, "kernel", "lib", job.TestBPFModule)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// qemu is the command line that boots m with initrd: TCG (no KVM is
// needed), one CPU, no network, the console on the serial port, KASLR
// off so that addresses are stable, and no reboot after the agent powers
// off.
func (m Machine) qemu(initrd string) (string, []string, error) {
	common := []string{"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512", "-nographic", "-no-reboot",
		"-kernel", m.Kernel, "-initrd", initrd}
	extra := strings.Join(append([]string{""}, m.Cmdline...), " ")
	switch m.Arch {
	case "x86_64":
		return "qemu-system-x86_64", append([]string{"-machine", "q35"}, append(common,
			"-append", "console=ttyS0 panic=-1 quiet nokaslr"+extra)...), nil
	case "arm64":
		return "qemu-system-aarch64", append([]string{"-M", "virt"}, append(common,
			"-append", "console=ttyAMA0 panic=-1 quiet nokaslr"+extra)...), nil
	}
	return "", nil, fmt.Errorf("oracle: no QEMU machine for arch %q", m.Arch)
}

// Boot runs j in a fresh guest and returns the results it printed.
func (m Machine) Boot(ctx context.Context, j job.Job) ([]job.Result, error) {
	guest, err := os.ReadFile(m.Guest)
	if err != nil {
		return nil, err
	}
	jb, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tailsim-oracle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	initrd := filepath.Join(dir, "initrd.cpio.gz")
	var module []byte
	if m.Module != "" {
		if module, err = os.ReadFile(m.Module); err != nil {
			return nil, err
		}
	}
	if err := writeInitrd(initrd, guest, jb, module); err != nil {
		return nil, err
	}
	name, args, err := m.qemu(initrd)
	if err != nil {
		return nil, err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	runErr := cmd.Run()
	if m.Log != nil {
		m.Log.Write(out.Bytes())
	}
	results, done := parseConsole(out.Bytes())
	switch {
	case ctx.Err() != nil:
		return results, fmt.Errorf("%s: no power-off within %v (%d results read)", name, timeout, len(results))
	case runErr != nil:
		return results, fmt.Errorf("%s: %v", name, runErr)
	case !done:
		return results, fmt.Errorf("%s: the guest stopped before its last result (%d read); its console ends:\n%s", name, len(results), tail(out.String(), 20))
	}
	return results, nil
}

// parseConsole reads the agent's lines out of the console, and whether the
// last one (job.Done) came. A line of the agent's that does not parse is
// kept as job.Garbled: a result may be lost in it.
func parseConsole(b []byte) ([]job.Result, bool) {
	var out []job.Result
	done := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		l := sc.Text()
		i := strings.Index(l, job.Prefix)
		if i < 0 {
			continue
		}
		var r job.Result
		if json.Unmarshal([]byte(strings.TrimRight(l[i+len(job.Prefix):], "\r")), &r) != nil {
			r = job.Result{Kind: job.Garbled, Err: l}
		}
		out = append(out, r)
		done = done || r.Kind == job.Done
	}
	return out, done
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeInitrd writes a gzipped newc cpio archive holding the agent as
// /init, the job, and the two device nodes the kernel opens for PID 1's
// console. Device nodes need no privilege in an archive.
func writeInitrd(path string, guest, jobJSON, module []byte) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	w := &cpioWriter{w: zw}
	w.entry("dev", 0o040755, 0, 0, nil)
	w.entry("dev/console", 0o020600, 5, 1, nil)
	w.entry("dev/null", 0o020666, 1, 3, nil)
	w.entry("proc", 0o040755, 0, 0, nil)
	w.entry("sys", 0o040755, 0, 0, nil)
	w.entry("init", 0o100755, 0, 0, guest)
	w.entry("job.json", 0o100644, 0, 0, jobJSON)
	if module != nil {
		w.entry(job.TestBPFModule, 0o100644, 0, 0, module)
	}
	w.entry("TRAILER!!!", 0, 0, 0, nil)
	if w.err != nil {
		return w.err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// cpioWriter writes the "new ASCII" (070701) cpio format the kernel's
// initramfs unpacker reads (Documentation/driver-api/early-userspace/
// buffer-format.rst): a header of thirteen 8-digit hex fields, the name
// and the data, each padded to 4 bytes.
type cpioWriter struct {
	w   io.Writer
	n   int
	ino int
	err error
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	k, err := c.w.Write(b)
	c.n += k
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) entry(name string, mode, rmajor, rminor int, data []byte) {
	c.ino++
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

// ErrNoKernel is returned when a Machine names no kernel to boot.
var ErrNoKernel = errors.New("oracle: no kernel image")

// WriteResults records a boot's results, one JSON object per line.
func WriteResults(path string, results []job.Result) error {
	var b bytes.Buffer
	for _, r := range results {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// ReadResults reads what WriteResults wrote.
func ReadResults(path string) ([]job.Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []job.Result
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r job.Result
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

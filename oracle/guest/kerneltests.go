package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"tailsim/oracle/job"
)

// kernelTests loads lib/test_bpf's module with its tail-call suite when
// the initramfs holds it: the module runs every test at init, with the
// JIT, and logs a line per test (lib/test_bpf.c test_tail_calls()). Its
// init fails when a test fails, which is a result, not an error.
func kernelTests() (job.Result, bool) {
	f, err := os.Open("/" + job.TestBPFModule)
	if err != nil {
		return job.Result{}, false
	}
	defer f.Close()
	say(job.Result{Kind: job.KernelTestsStart})
	r := job.Result{Kind: job.KernelTests}
	if err := unix.FinitModule(int(f.Fd()), "test_suite="+job.TestBPFSuite, 0); err != nil {
		r.Err = fmt.Sprintf("finit_module: %v", err) // EINVAL when a test failed
	}
	buf := make([]byte, 1<<20)
	n, err := syscall.Klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf)
	if err != nil {
		r.Err = strings.TrimSpace(r.Err + "; reading the kernel log: " + err.Error())
		return r, true
	}
	r.Tests, r.Log = parseTestLog(string(buf[:n]))
	return r, true
}

// testLine is a test's line in the kernel log, after the level and time.
var testLine = regexp.MustCompile(`test_bpf: #(\d+) (.*?) jited:(\d) (.*)$`)

// parseTestLog returns the tests the log reports, and every line of the
// module's (so that what the pattern missed still reaches the host).
func parseTestLog(log string) ([]job.KernelTest, []string) {
	var out []job.KernelTest
	var raw []string
	for _, l := range strings.Split(log, "\n") {
		l = strings.TrimRight(l, "\r ")
		if strings.Contains(l, "test_bpf:") {
			raw = append(raw, l)
		}
		m := testLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		rest := strings.TrimSpace(m[4])
		out = append(out, job.KernelTest{Index: i, Name: m[2], Jited: m[3] == "1",
			Pass: strings.HasSuffix(rest, "PASS"), Detail: rest})
	}
	return out, raw
}

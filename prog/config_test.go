package prog

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		err  string
	}{
		{in: "none", want: 0},
		{in: "default", want: 0},
		{in: "ibt, pac", want: IBT | PAC},
		{in: "distro", want: Retpoline | SLS | Thunk | Rethunk | BMI2 | BTI | PAC},
		{in: "distro-eibrs,ibt", want: Retpoline | SLS | BMI2 | BTI | PAC | IBT},
		{in: "retpoline,lfence", want: Retpoline | Lfence},
		{in: "cet", err: `unknown config "cet"`},
		{in: "", err: `unknown config ""`},
		{in: "thunk", err: "need retpoline"},
		{in: "distro,lfence", err: "a kernel makes one"},
	} {
		got, err := ParseConfig(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseConfig(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseConfig(%q) = %v, %v; want %v", tc.in, got, err, tc.want.Options())
		}
	}
}

// String names a preset by its name and anything else by its options, and
// ParseConfig reads back what String writes.
func TestConfigString(t *testing.T) {
	for _, p := range Configs {
		if p.Config.String() != p.Name {
			t.Errorf("%s: String() = %q", p.Name, p.Config.String())
		}
		if err := p.Config.Check(); err != nil {
			t.Errorf("preset %s: %v", p.Name, err)
		}
	}
	for _, c := range []Config{IBT, IBT | BTI | PAC, Retpoline | SLS, Configs[1].Config | IBT} {
		back, err := ParseConfig(c.String())
		if err != nil || back != c {
			t.Errorf("%v: ParseConfig(String()) = %v, %v", c.Options(), back, err)
		}
	}
	if s := (IBT | SLS).String(); s != "ibt+sls" {
		t.Errorf("String() = %q, want ibt+sls", s)
	}
}

// A scenario's config adds to the run's; its own spectre_v2 choice wins.
func TestConfigUnder(t *testing.T) {
	distro := Configs[1].Config
	for _, tc := range []struct{ sc, run, want Config }{
		{0, distro, distro},
		{IBT, 0, IBT},
		{IBT, distro, distro | IBT},
		{Retpoline | Lfence, distro, distro&^Thunk | Lfence},
		{Retpoline | Thunk, Configs[3].Config, Configs[3].Config&^Lfence | Thunk},
	} {
		if got := tc.sc.Under(tc.run); got != tc.want || got.Check() != nil {
			t.Errorf("%v under %v = %v (%v), want %v", tc.sc.Options(), tc.run.Options(), got.Options(), got.Check(), tc.want.Options())
		}
	}
}

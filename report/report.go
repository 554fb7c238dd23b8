// Package report writes stepped runs as one self-contained HTML page for
// learning how a JIT's tail call works: the machine code with the current
// instruction highlighted and controls to step through it, a picture of
// the memory it reads and writes (the prog array's max_entries, ptrs[]
// and the patched series' cached half with the selected slot, the struct
// bpf_progs and where each tail call lands, the stack frame with the
// counter), the three checks named where they are decided, each tail
// call's cost, and the chain of programs with the counter at each hop.
//
// The page reads the runs through package trace (its items, events,
// costs and lines) and the code through package listing, as "tailsim
// trace" and "tailsim disasm" do, so the three tell one story. The data
// goes into the page as JSON beside a small hand-written script and
// style sheet (assets/), with no network access and nothing external.
package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"

	"tailsim/listing"
	"tailsim/prog"
	"tailsim/scenarios"
)

var (
	//go:embed assets/page.html
	pageHTML string
	//go:embed assets/report.css
	reportCSS string
	//go:embed assets/report.js
	reportJS string

	page = template.Must(template.New("page").Parse(pageHTML))
)

// Options say how the runs were made, so that the listings match them.
type Options struct {
	// Layout is the structure layout the runs used when it was not the
	// scenario's (scenarios.Options.Layout).
	Layout *prog.Layout
}

// Write writes the page for reports of one scenario (one per arch and
// variant, from scenarios.Run with Options.Step): every run each kept
// (Options.Keep), with the listing of the code it ran, built for the
// same world, arch and variant.
func Write(w io.Writer, sc *scenarios.Scenario, o Options, reps ...*scenarios.Report) error {
	d, err := build(sc, o, reps)
	if err != nil {
		return err
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	err = page.Execute(&b, struct {
		Title string
		CSS   template.CSS
		JS    template.JS
		Data  template.JS
	}{d.Title, template.CSS(reportCSS), template.JS(reportJS), template.JS(data)})
	if err != nil {
		return err
	}
	_, err = w.Write(b.Bytes())
	return err
}

func build(sc *scenarios.Scenario, o Options, reps []*scenarios.Report) (*pageData, error) {
	layout := o.Layout
	d := &pageData{Title: sc.Title, File: sc.File, About: sc.Comment}
	if d.Title == "" {
		d.Title = sc.File
	}
	for _, rep := range reps {
		l, bpfOnly, err := listingFor(sc, layout, rep, nil)
		if err != nil {
			return nil, fmt.Errorf("%s on %s/%s: %w", sc.File, rep.Arch, rep.Kernel, err)
		}
		// A listing per state of the poke sites: runs after slot updates
		// ran code the updates re-poked.
		type listed struct {
			l  *listing.Listing
			ix *codeIndex
			li int
		}
		byState := map[string]listed{}
		add := func(l *listing.Listing) listed {
			code, ix := newCode(l, bpfOnly)
			d.Listings = append(d.Listings, code)
			return listed{l, ix, len(d.Listings) - 1}
		}
		loaded := pokeState(l, nil)
		byState[loaded] = add(l)
		verdict := []string{fmt.Sprintf("%s on %s/%s", strings.ToUpper(rep.Status.String()), rep.Arch, rep.Kernel)}
		for _, f := range rep.Failures {
			verdict = append(verdict, "FAIL "+f.String())
		}
		for _, n := range rep.Notes {
			verdict = append(verdict, "note "+n)
		}
		for _, rec := range rep.Runs {
			if rec.Result == nil {
				continue
			}
			cur, ok := byState[pokeState(l, rec.Arrays)]
			if !ok {
				slots := func(array string, key uint32) string {
					for _, a := range rec.Arrays {
						if p := a.Poked(key); a.Name == array && p != nil {
							return p.Name
						}
					}
					return ""
				}
				rl, _, err := listingFor(sc, layout, rep, slots)
				if err != nil {
					return nil, fmt.Errorf("%s on %s/%s: %w", sc.File, rep.Arch, rep.Kernel, err)
				}
				cur = add(rl)
				byState[pokeState(l, rec.Arrays)] = cur
			}
			r := newRun(cur.l, cur.ix, bpfOnly, rec)
			r.Listing, r.Arch, r.Kernel, r.Verdict = cur.li, rep.Arch, rep.Kernel.String(), verdict
			r.Label = fmt.Sprintf("%s/%s: %s (line %d)", rep.Arch, rep.Kernel, rec.Step, rec.Line)
			if rec.Repeat > 1 {
				r.Label += fmt.Sprintf(", iteration %d of %d", rec.Iter, rec.Repeat)
			}
			d.Runs = append(d.Runs, r)
		}
	}
	if len(d.Runs) == 0 {
		return nil, fmt.Errorf("%s: no stepped run to show", sc.File)
	}
	return d, nil
}

// listingFor lists the code a report's runs ran; the reference model's
// runs step through BPF instructions, listed from the first arch's
// listing without its machine code.
func listingFor(sc *scenarios.Scenario, layout *prog.Layout, rep *scenarios.Report, slots func(string, uint32) string) (*listing.Listing, bool, error) {
	arch, v := rep.Arch, rep.Kernel
	la, bpfOnly := listing.Arches[0], true
	for _, a := range listing.Arches {
		if a.Name == arch {
			la, bpfOnly = a, false
		}
	}
	w, err := sc.BuildFor(v, layout, arch)
	if err != nil {
		return nil, false, err
	}
	l, err := listing.Build(w, la, v, listing.Options{Config: sc.Config.Under(rep.Config), Slots: slots,
		Source: listing.Source{File: sc.File, Title: sc.Title, Arches: sc.Arches, Kernels: sc.Kernels}})
	return l, bpfOnly, err
}

// pokeState names what every poke site of l jumps to: as listed (arrays
// nil), or as the arrays a run found hold.
func pokeState(l *listing.Listing, arrays []*prog.ProgArray) string {
	var b strings.Builder
	for _, f := range l.Funcs {
		for _, g := range f.Groups {
			for _, r := range g.Rows {
				p := r.Poke
				if p == nil || p.Role != listing.TargetPoke {
					continue
				}
				name := ""
				if p.Prog != nil {
					name = p.Prog.Name
				}
				if arrays != nil {
					name = ""
					for _, a := range arrays {
						if q := a.Poked(p.Key); a.Name == p.Array.Name && q != nil {
							name = q.Name
						}
					}
				}
				fmt.Fprintf(&b, "%s[%d]=%s;", p.Array.Name, p.Key, name)
			}
		}
	}
	return b.String()
}

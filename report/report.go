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
	layout := sc.Layout
	if o.Layout != nil {
		layout = *o.Layout
	}
	d := &pageData{Title: sc.Title, File: sc.File, About: sc.Comment}
	if d.Title == "" {
		d.Title = sc.File
	}
	for _, rep := range reps {
		l, bpfOnly, err := listingFor(sc, layout, rep.Arch, rep.Variant)
		if err != nil {
			return nil, fmt.Errorf("%s on %s/%s: %w", sc.File, rep.Arch, rep.Variant, err)
		}
		code, ix := newCode(l, bpfOnly)
		li := len(d.Listings)
		d.Listings = append(d.Listings, code)
		verdict := []string{fmt.Sprintf("%s on %s/%s", strings.ToUpper(rep.Status.String()), rep.Arch, rep.Variant)}
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
			r := newRun(l, ix, bpfOnly, rec)
			r.Listing, r.Arch, r.Variant, r.Verdict = li, rep.Arch, rep.Variant.String(), verdict
			r.Label = fmt.Sprintf("%s/%s: %s (line %d)", rep.Arch, rep.Variant, rec.Step, rec.Line)
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
func listingFor(sc *scenarios.Scenario, layout prog.Layout, arch string, v prog.Variant) (*listing.Listing, bool, error) {
	la, bpfOnly := listing.Arches[0], true
	for _, a := range listing.Arches {
		if a.Name == arch {
			la, bpfOnly = a, false
		}
	}
	w, err := sc.BuildWith(layout)
	if err != nil {
		return nil, false, err
	}
	l, err := listing.Build(w, la, v, listing.Options{Hardening: sc.Hardening,
		Source: listing.Source{File: sc.File, Title: sc.Title, Arches: sc.Arches, Variants: sc.Variants}})
	return l, bpfOnly, err
}

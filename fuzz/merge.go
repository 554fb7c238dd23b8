package fuzz

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// IndexFile is what a campaign writes beside its reproducers: each
// finding's identity, typed, so that shards' findings can be merged
// without reading the reproducers' prose.
const IndexFile = "findings.json"

// Entry is one finding in an index.
type Entry struct {
	Seed      uint64 `json:"seed"`
	Input     int    `json:"input"` // which input of the seed's stream
	Arch      string `json:"arch"`
	Kernel    string `json:"kernel"`
	Signature string `json:"signature"`
	Known     string `json:"known,omitempty"` // the library scenario that explains it
	File      string `json:"file"`            // the reproducer, relative to the index
}

// Index is a findings directory's index.
type Index struct {
	// The campaign: its first seed, the shard it ran of how many, on
	// which arches and variants; merging checks them.
	Seed    uint64   `json:"seed"`
	Inputs  int      `json:"inputs"` // per shape
	Shard   uint64   `json:"shard"`
	Shards  uint64   `json:"shards"`
	Arches  []string `json:"arches"`
	Kernels []string `json:"kernels"`
	Cases   int      `json:"cases"`  // inputs checked
	Shapes  int      `json:"shapes"` // seeds, each a shape loaded once
	// Unparsed cases are a generator bug; Slow ones went unchecked.
	Unparsed int `json:"unparsed"`
	Slow     int `json:"slow"`
	// Interrupted: the campaign was stopped (Campaign.Stop) before its
	// cases or duration; its seeds are not all checked.
	Interrupted bool          `json:"interrupted,omitempty"`
	Findings    []Entry       `json:"findings"`
	Coverage    []CoverageRow `json:"coverage"`
}

// New counts the index's findings that no library scenario explains.
func (x *Index) New() int {
	n := 0
	for _, e := range x.Findings {
		if e.Known == "" {
			n++
		}
	}
	return n
}

func writeIndex(dir string, x *Index) error {
	data, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, IndexFile), append(data, '\n'), 0o644)
}

func readIndex(dir string) (*Index, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	var x Index
	if err := json.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, IndexFile), err)
	}
	return &x, nil
}

// Index is a campaign's index: what it writes to IndexFile and what
// "tailsim fuzz -json" prints.
func (c *Campaign) Index(sum *Summary) *Index {
	inputs := c.Inputs
	if inputs <= 0 {
		inputs = DefaultInputs
	}
	x := &Index{Seed: c.Seed, Inputs: inputs, Shard: c.Shard, Shards: max(c.Shards, 1), Cases: sum.Cases, Shapes: sum.Shapes, Unparsed: sum.Unparsed, Slow: sum.Slow,
		Interrupted: sum.Interrupted, Findings: []Entry{}, Coverage: sum.Coverage.Rows()}
	for _, b := range c.Backends {
		x.Arches = append(x.Arches, b.Name())
	}
	for _, v := range c.Kernels {
		x.Kernels = append(x.Kernels, v.String())
	}
	for _, r := range sum.Reproducers {
		x.Findings = append(x.Findings, Entry{Seed: r.Case.Seed, Input: r.Case.Input, Arch: r.Arch, Kernel: r.Kernel, Signature: r.Signature,
			Known: r.Known, File: filepath.Base(r.Path)})
	}
	return x
}

// Merge gathers the findings of the shards of one campaign into out, an
// empty directory: one reproducer per signature and explanation, the
// first case's (by seed, then input), as the campaign unsharded would keep; the cases and the
// coverage add up. The shards must be of one campaign (seed, shard
// count, arches, variants), each once, none missing.
func Merge(out string, dirs ...string) (*Index, error) {
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("merged directory %s is not empty", out)
	}
	if err := writableDir(out); err != nil {
		return nil, fmt.Errorf("merged directory: %w", err)
	}
	type found struct {
		e   Entry
		dir string
	}
	best := map[string]found{}
	merged := &Index{Findings: []Entry{}}
	cov := Coverage{}
	shards := map[uint64]string{}
	for i, dir := range dirs {
		x, err := readIndex(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s has no %s: not a finished campaign's directory (a campaign killed before its end leaves only found-*.txtar files, each a reproducer)", dir, IndexFile)
		}
		if err != nil {
			return nil, err
		}
		if x.Interrupted {
			return nil, fmt.Errorf("%s is shard %d of %d, interrupted before its end: its seeds are not all checked", dir, x.Shard, x.Shards)
		}
		if i == 0 {
			merged.Seed, merged.Inputs, merged.Shards, merged.Arches, merged.Kernels = x.Seed, x.Inputs, 1, x.Arches, x.Kernels
			if x.Shards != uint64(len(dirs)) {
				return nil, fmt.Errorf("%s is shard %d of %d, but %d directories are merged", dir, x.Shard, x.Shards, len(dirs))
			}
		}
		switch {
		case x.Seed != merged.Seed || x.Inputs != merged.Inputs || x.Shards != uint64(len(dirs)) || !slices.Equal(x.Arches, merged.Arches) || !slices.Equal(x.Kernels, merged.Kernels):
			return nil, fmt.Errorf("%s is another campaign (seed %d, %d inputs per shape, %d shards, %v %v) than %s (seed %d, %d inputs per shape, %d shards, %v %v)",
				dir, x.Seed, x.Inputs, x.Shards, x.Arches, x.Kernels, dirs[0], merged.Seed, merged.Inputs, len(dirs), merged.Arches, merged.Kernels)
		case shards[x.Shard] != "":
			return nil, fmt.Errorf("%s and %s are both shard %d", shards[x.Shard], dir, x.Shard)
		}
		shards[x.Shard] = dir
		merged.Cases += x.Cases
		merged.Shapes += x.Shapes
		merged.Unparsed += x.Unparsed
		merged.Slow += x.Slow
		cov.merge(FromRows(x.Coverage))
		for _, e := range x.Findings {
			key := e.Signature + " " + e.Known
			if b, ok := best[key]; !ok || e.Seed < b.e.Seed || e.Seed == b.e.Seed && e.Input < b.e.Input {
				best[key] = found{e, dir}
			}
		}
	}
	keys := make([]string, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		f := best[k]
		data, err := os.ReadFile(filepath.Join(f.dir, f.e.File))
		if err != nil {
			return nil, err
		}
		e := f.e
		e.File = fmt.Sprintf("finding-%02d-seed-%d-input-%d.txtar", i+1, e.Seed, e.Input)
		if err := os.WriteFile(filepath.Join(out, e.File), data, 0o644); err != nil {
			return nil, fmt.Errorf("writing finding: %w", err)
		}
		merged.Findings = append(merged.Findings, e)
	}
	merged.Coverage = cov.Rows()
	return merged, writeIndex(out, merged)
}

// ShardFromEnv reads a shard's index and the shard count from a batch
// system's environment, so that one job spec runs a campaign on N
// machines: the index from JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs)
// or SLURM_ARRAY_TASK_ID (Slurm job arrays min-max[:step], counted from
// SLURM_ARRAY_TASK_MIN in SLURM_ARRAY_TASK_STEPs), the count from
// TAILSIM_SHARDS or SLURM_ARRAY_TASK_COUNT.
func ShardFromEnv(getenv func(string) string) (shard, shards uint64, err error) {
	num := func(name string) (uint64, bool, error) {
		v := getenv(name)
		if v == "" {
			return 0, false, nil
		}
		var n uint64
		if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v {
			return 0, false, fmt.Errorf("%s=%q is not a number", name, v)
		}
		return n, true, nil
	}
	var ok bool
	if shard, ok, err = num("JOB_COMPLETION_INDEX"); err != nil {
		return 0, 0, err
	}
	if !ok {
		if shard, ok, err = num("SLURM_ARRAY_TASK_ID"); err != nil {
			return 0, 0, err
		}
		if ok {
			// Task ids min, min+step, ...: a list of other ids would
			// leave seeds unrun, so it is refused.
			lo, _, err := num("SLURM_ARRAY_TASK_MIN")
			if err != nil {
				return 0, 0, err
			}
			step, hasStep, err := num("SLURM_ARRAY_TASK_STEP")
			if err != nil {
				return 0, 0, err
			}
			if !hasStep || step == 0 {
				step = 1
			}
			if lo > shard || (shard-lo)%step != 0 {
				return 0, 0, fmt.Errorf("task id %d is not SLURM_ARRAY_TASK_MIN %d plus a multiple of SLURM_ARRAY_TASK_STEP %d: use an array min-max[:step]", shard, lo, step)
			}
			shard = (shard - lo) / step
		}
	}
	if !ok {
		return 0, 0, fmt.Errorf("no shard index in the environment (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID)")
	}
	if shards, ok, err = num("TAILSIM_SHARDS"); err != nil {
		return 0, 0, err
	}
	if !ok {
		if shards, ok, err = num("SLURM_ARRAY_TASK_COUNT"); err != nil {
			return 0, 0, err
		}
	}
	if !ok || shards == 0 || shard >= shards {
		return 0, 0, fmt.Errorf("shard %d of %d: set TAILSIM_SHARDS to the number of shards", shard, shards)
	}
	return shard, shards, nil
}

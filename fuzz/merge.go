package fuzz

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// IndexFile is what a campaign writes beside its reproducers: each
// finding's identity, typed, so that shards' findings can be merged
// without reading the reproducers' prose.
const IndexFile = "findings.json"

// Entry is one finding in an index.
type Entry struct {
	Seed      uint64 `json:"seed"`
	Arch      string `json:"arch"`
	Variant   string `json:"variant"`
	Signature string `json:"signature"`
	Known     string `json:"known,omitempty"` // the library scenario that explains it
	File      string `json:"file"`            // the reproducer, relative to the index
}

// Index is a findings directory's index.
type Index struct {
	Cases    int           `json:"cases"`
	Findings []Entry       `json:"findings"`
	Coverage []CoverageRow `json:"coverage"`
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

// indexOf is a campaign's index.
func indexOf(sum *Summary) *Index {
	x := &Index{Cases: sum.Cases, Findings: []Entry{}, Coverage: sum.Coverage.Rows()}
	for _, r := range sum.Reproducers {
		x.Findings = append(x.Findings, Entry{Seed: r.Case.Seed, Arch: r.Arch, Variant: r.Variant, Signature: r.Signature,
			Known: r.Known, File: filepath.Base(r.Path)})
	}
	return x
}

// Merge gathers the findings of campaigns' directories (shards of one
// campaign, or campaigns on several machines) into out: one reproducer per
// signature and explanation, the lowest seed's, as one campaign over all
// their seeds would keep; the cases add up.
func Merge(out string, dirs ...string) (*Index, error) {
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
	for _, dir := range dirs {
		x, err := readIndex(dir)
		if err != nil {
			return nil, err
		}
		merged.Cases += x.Cases
		cov.merge(FromRows(x.Coverage))
		for _, e := range x.Findings {
			key := e.Signature + " " + e.Known
			if b, ok := best[key]; !ok || e.Seed < b.e.Seed {
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
		e.File = fmt.Sprintf("finding-%02d-seed-%d.txtar", i+1, e.Seed)
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
// or SLURM_ARRAY_TASK_ID (Slurm job arrays, counted from
// SLURM_ARRAY_TASK_MIN), the count from TAILSIM_SHARDS or
// SLURM_ARRAY_TASK_COUNT.
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
			lo, _, err := num("SLURM_ARRAY_TASK_MIN")
			if err != nil || lo > shard {
				return 0, 0, fmt.Errorf("SLURM_ARRAY_TASK_MIN %d above the task id %d (%v)", lo, shard, err)
			}
			shard -= lo
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

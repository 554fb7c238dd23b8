// tailsim report: steps through the runs in #data (made by package
// report from the trace, the listing and the arrays). No libraries, no
// network. Opened with #step=N (and &run=R) it starts at that step;
// with #selftest it steps through itself and writes what it saw into
// #selftest, for the browser test.
'use strict';
(function () {
  const D = JSON.parse(document.getElementById('data').textContent);
  const $ = (id) => document.getElementById(id);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const errors = [];
  window.addEventListener('error', (e) => errors.push(String(e.message)));

  let run = null;   // the run shown
  let step = 0;     // its step shown: the instruction and what it did
  let rowEls = [];  // listing rows by id
  let grpEls = [];  // listing groups by id
  let mem = null;   // the drawn memory: elements by cell, slot and program

  // html makes an element with attributes and children (strings or nodes).
  function html(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function svg(parent, tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    parent.appendChild(e);
    return e;
  }

  // ---- the page's fixed parts

  $('title').textContent = D.title;
  $('file').textContent = D.file;
  if (D.about) $('about').textContent = D.about; else $('about-box').hidden = true;
  D.runs.forEach((r, i) => $('run').append(html('option', { value: i }, r.label)));
  if (D.runs.length < 2) $('run-pick').hidden = true;

  function showRun(i, at) {
    run = D.runs[i];
    $('run').value = i;
    const v = $('verdict');
    v.replaceChildren(...run.verdict.map((t, k) =>
      html('div', k === 0 ? { class: t.startsWith('PASS') ? 'pass' : 'fail' } : {}, t)));
    showListing(D.listings[run.listing]);
    drawMemory();
    drawChain();
    $('slider').max = run.steps.length - 1;
    go(at || 0);
  }

  // ---- the listing

  function showListing(code) {
    $('code-title').textContent = code.bpfOnly ? 'The BPF program' : 'The machine code, under each BPF instruction';
    $('code-heading').textContent = code.heading.join('\n');
    const box = $('listing');
    box.replaceChildren();
    rowEls = []; grpEls = [];
    for (const f of code.funcs) {
      box.append(html('div', { class: 'fn-head' }, f.heading));
      for (const g of f.groups) {
        const head = html('div', { class: 'grp-head' }, '; ' + g.heading,
          g.tailCall ? html('span', { class: 'tc' }, 'tail call: ' + g.tailCall) : null,
          g.comment ? html('span', { class: 'cm' }, '# ' + g.comment) : null);
        const ge = html('div', { class: 'grp' + (code.bpfOnly ? ' bpf' : ''), id: 'grp-' + g.id }, head);
        for (const r of g.rows || []) {
          for (const m of r.marks || []) ge.append(html('div', { class: 'mark' }, '<' + m + '>'));
          const re = html('div', { class: 'row', id: 'row-' + r.id, 'data-row': r.id },
            html('span', { class: 'off' }, r.off + ':'),
            html('span', { class: 'txt' }, r.text),
            r.check ? html('span', { class: 'check', 'data-check': r.check }, r.check) : null,
            r.note ? html('span', { class: 'note' }, '; ' + r.note) : null);
          re.addEventListener('click', () => goRow(r.id));
          rowEls[r.id] = re;
          ge.append(re);
        }
        grpEls[g.id] = ge;
        box.append(ge);
      }
    }
  }

  // goRow moves to the next step (after the current one, wrapping) that
  // runs row id.
  function goRow(id) {
    const n = run.steps.length;
    for (let k = 1; k <= n; k++) {
      const s = (step + k) % n;
      if (run.steps[s].row === id) return go(s);
    }
  }

  // ---- the memory picture

  const ROW = 24, CELLW = 170, CHARW = 7.3;

  function drawMemory() {
    const root = $('mem');
    root.replaceChildren();
    const defs = svg(root, 'defs');
    for (const [id, color] of [['arrowhead', '#8d8b82'], ['arrowhead-hot', '#e0a800']]) {
      const m = svg(defs, 'marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
      svg(m, 'path', { d: 'M0,0 L10,5 L0,10 z', fill: color });
    }
    mem = { cells: [], slots: {}, arrows: [], progs: {}, width: 0 };
    const x0 = 12;
    let y = 8;
    const progX = x0 + 44 + CELLW + 80;
    const rowsY = {}; // program -> y of the first slot holding it

    const cellAt = (c, x, yy, w) => {
      const cell = run.cells[c];
      const rect = svg(root, 'rect', { x, y: yy, width: w, height: ROW - 4, rx: 3, class: 'cell ' + cell.kind, id: cell.id });
      const text = svg(root, 'text', { x: x + 6, y: yy + 15, class: 'val' });
      mem.cells[c] = { rect, text, x, y: yy, w };
    };
    const slotBox = (key, x, yy, w, past) => {
      const r = svg(root, 'rect', { x: x - 3, y: yy - 3, width: w + 6, height: ROW + 2, rx: 4, class: 'sel' + (past ? ' past' : ''), visibility: 'hidden' });
      (mem.slots[key] = mem.slots[key] || []).push(r);
    };

    run.arrays.forEach((a, ai) => {
      svg(root, 'text', { x: x0, y: y + 12, class: 'title' }, 'struct bpf_array ' + a.name + '  (the prog array)');
      svg(root, 'text', { x: x0, y: y + 26, class: 'sub' }, a.offsets);
      y += 34;
      svg(root, 'text', { x: x0, y: y + 15, class: 'sub' }, 'header');
      cellAt(a.header, x0 + 44, y, CELLW);
      y += ROW + 6;
      const section = (kind, label) => {
        svg(root, 'text', { x: x0, y: y + 11, class: 'sub' }, label);
        y += 16;
        let pastShown = false;
        for (const r of a.rows) {
          if (r.past && !pastShown) {
            pastShown = true;
            y = endOfArray(root, x0, y, a, kind);
          }
          if (!r.past && r.gap > 0) {
            svg(root, 'text', { x: x0 + 50, y: y + 12, class: 'gap' }, '⋮  ' + r.gap + ' more slot' + (r.gap > 1 ? 's' : '') + ' not drawn');
            y += 18;
          }
          const key = ai + ':' + r.slot;
          svg(root, 'text', { x: x0, y: y + 15, class: 'sub' }, '[' + r.slot + ']');
          if (r.past) {
            svg(root, 'rect', { x: x0 + 44, y, width: CELLW, height: ROW - 4, rx: 3, class: 'cell past' });
            svg(root, 'text', { x: x0 + 50, y: y + 15, class: 'sub' }, 'past the end');
            slotBox(key, x0 + 44, y, CELLW, true);
            y += ROW;
            continue;
          }
          const c = kind === 'ptrs' ? r.ptrs : r.cached;
          cellAt(c, x0 + 44, y, CELLW);
          slotBox(key, x0 + 44, y, CELLW, false);
          const holds = run.cells[c].holds;
          if (holds) {
            mem.arrows.push({ from: c, prog: holds, key, kind, y: y + (ROW - 4) / 2 });
            if (rowsY[holds] == null) rowsY[holds] = y;
          }
          y += ROW;
        }
        if (!pastShown) y = endOfArray(root, x0, y, a, kind);
      };
      section('ptrs', 'ptrs[i]: pointers to struct bpf_prog');
      if (a.cached) section('cached', 'cached[i] = ptrs[max_entries + i]: jump targets');
      y += 12;
    });

    // The programs, each near the first slot that holds it.
    // With many programs each is one line beside its slot.
    const compact = run.progs.length > 6;
    let py = 8, progW = 270;
    for (const p of run.progs) {
      const text = compact ? 'bpf_prog ' + p.name + ' bpf_func ' + ' '.repeat(19) + (p.entry ? 'lands at ' + p.entry : '')
        : 'tail calls land at ' + (p.entry || '');
      progW = Math.max(progW, 16 + CHARW * text.length);
    }
    for (const p of run.progs) {
      const h = compact ? ROW - 2 : 66;
      const top = Math.max(py, (rowsY[p.name] != null ? rowsY[p.name] - (compact ? 1 : 8) : py));
      const box = svg(root, 'rect', { x: progX, y: top, width: progW, height: h, rx: 5, class: 'box prog', id: 'prog-' + p.name });
      const name = svg(root, 'text', { x: progX + 8, y: top + 16, class: 'title' }, (compact ? 'bpf_prog ' : 'struct bpf_prog ') + p.name);
      if (compact) {
        const x = progX + 12 + CHARW * ('bpf_prog ' + p.name).length;
        if (p.bpfFunc >= 0) { svg(root, 'text', { x, y: top + 15, class: 'sub' }, 'bpf_func'); cellAt(p.bpfFunc, x + 48, top + 1, 110); }
        if (p.entry) svg(root, 'text', { x: x + 166, y: top + 15, class: 'lands' }, 'lands at ' + p.entry);
        mem.progs[p.name] = { box, y: top, entryY: top + h / 2 };
        py = top + ROW;
        continue;
      }
      if (p.bpfFunc >= 0) {
        svg(root, 'text', { x: progX + 8, y: top + 36, class: 'sub' }, 'bpf_func');
        cellAt(p.bpfFunc, progX + 60, top + 22, 140);
      } else {
        svg(root, 'text', { x: progX + 8, y: top + 38, class: 'sub' }, 'a program of the model: no machine code');
      }
      if (p.entry) svg(root, 'text', { x: progX + 8, y: top + 59, class: 'lands' }, 'tail calls land at ' + p.entry);
      mem.progs[p.name] = { box, y: top, entryY: top + 55 };
      name.setAttribute('y', top + 16);
      py = top + 76;
    }
    for (const a of mem.arrows) {
      const from = mem.cells[a.from], to = mem.progs[a.prog];
      if (!to) continue;
      const x1 = from.x + from.w, y1 = a.y, x2 = progX - 2;
      const y2 = a.kind === 'cached' ? to.entryY : to.y + 11;
      a.path = svg(root, 'path', { d: `M${x1},${y1} C${x1 + 50},${y1} ${x2 - 50},${y2} ${x2},${y2}`, class: 'arrow' + (a.kind === 'cached' ? ' cached' : '') });
    }

    // The stack frame, highest address first, and the counter.
    y = Math.max(y, py) + 8;
    if (run.stack.length) {
      svg(root, 'text', { x: x0, y: y + 12, class: 'title' }, 'the stack frame');
      svg(root, 'text', { x: x0 + 120, y: y + 12, class: 'sub' }, 'slots this run used, by offset from the frame pointer; the stack grows down');
      y += 20;
      const rowY = {};
      for (const c of run.stack) {
        const cell = run.cells[c];
        svg(root, 'text', { x: x0, y: y + 15, class: 'sub' }, cell.label);
        cellAt(c, x0 + 70, y, CELLW);
        const role = cell.kind === 'counter' ? '' : cell.kind === 'tcc_ptr' ? 'tcc_ptr: points at tail_call_cnt' : '';
        if (role) svg(root, 'text', { x: x0 + 80 + CELLW, y: y + 15, class: 'sub' }, role);
        rowY[c] = y;
        y += ROW;
      }
      if (run.counter >= 0 && rowY[run.counter] != null) {
        mem.counterText = svg(root, 'text', { x: x0 + 80 + CELLW, y: rowY[run.counter] + 15, class: 'counter-text', id: 'counter-value' });
        for (const c of run.stack) {
          if (run.cells[c].kind !== 'tcc_ptr') continue;
          const xa = x0 + 70, y1 = rowY[c] + 10, y2 = rowY[run.counter] + 10;
          svg(root, 'path', { d: `M${xa},${y1} C${xa - 40},${y1} ${xa - 40},${y2} ${xa},${y2}`, class: 'arrow' });
        }
      }
    }
    if (run.counter >= 0 && !mem.counterText) {
      // The reference model's counter lives in no memory.
      y += 8;
      svg(root, 'text', { x: x0, y: y + 12, class: 'title' }, 'the counter');
      svg(root, 'text', { x: x0 + 90, y: y + 12, class: 'sub' }, 'the reference model keeps it in no memory');
      y += 18;
      cellAt(run.counter, x0 + 70, y, CELLW);
      mem.counterText = svg(root, 'text', { x: x0 + 80 + CELLW, y: y + 15, class: 'counter-text', id: 'counter-value' });
      y += ROW;
    }
    // Drawn at its size, shrunk to the pane when wider.
    root.setAttribute('width', progX + progW + 12);
    root.setAttribute('height', y + 10);
    root.setAttribute('viewBox', `0 0 ${progX + progW + 12} ${y + 10}`);
  }

  // endOfArray draws the slots after the last drawn one and the end of
  // the array's half.
  function endOfArray(root, x0, y, a, kind) {
    if (a.tail > 0) {
      svg(root, 'text', { x: x0 + 50, y: y + 12, class: 'gap' }, '⋮  ' + a.tail + ' more slot' + (a.tail > 1 ? 's' : '') + ' not drawn');
      y += 18;
    }
    svg(root, 'line', { x1: x0 + 44, x2: x0 + 44 + CELLW, y1: y + 2, y2: y + 2, stroke: '#9c9a90', 'stroke-dasharray': '2 2' });
    svg(root, 'text', { x: x0 + 44, y: y + 14, class: 'gap' }, 'end of ' + kind + '[]: max_entries = ' + a.maxEntries);
    return y + 22;
  }

  // values are every cell's value after step k: its first known value,
  // then what the steps up to k read and wrote.
  function values(k) {
    const v = run.cells.map((c) => (c.init ? c.init : null));
    for (let s = 0; s <= k; s++) for (const t of run.steps[s].touch || []) v[t.cell] = t.v;
    return v;
  }

  function showValue(c, v) {
    const cell = run.cells[c], e = mem.cells[c];
    if (!e) return;
    let text = v, unknown = false;
    if (v == null) {
      unknown = true;
      text = cell.holds ? '&' + cell.holds + (D.listings[run.listing].bpfOnly ? '' : ' (unread)') : '? (not yet written)';
    } else if ((cell.kind === 'ptrs' || cell.kind === 'cached') && v === '0x0') {
      text = 'NULL (empty)';
    } else if (cell.kind === 'max_entries') {
      text = cell.label + ' = ' + BigInt(v).toString();
    } else if (cell.kind === 'counter') {
      text = BigInt(v).toString();
    }
    e.text.textContent = text;
    e.text.setAttribute('class', 'val' + (unknown ? ' unknown' : ''));
  }

  function showMemory() {
    const s = run.steps[step];
    const v = values(step);
    run.cells.forEach((c, i) => {
      showValue(i, v[i]);
      if (mem.cells[i]) mem.cells[i].rect.setAttribute('class', 'cell ' + c.kind);
    });
    for (const t of s.touch || []) {
      const e = mem.cells[t.cell];
      if (e) e.rect.setAttribute('class', 'cell ' + run.cells[t.cell].kind + (t.w ? ' write' : ' read'));
    }
    // The slot of the current tail call, or of the last one.
    for (const boxes of Object.values(mem.slots)) for (const b of boxes) b.setAttribute('visibility', 'hidden');
    for (const a of mem.arrows) a.path && a.path.setAttribute('class', 'arrow' + (a.kind === 'cached' ? ' cached' : ''));
    const root = $('mem');
    root.dataset.selected = '';
    const call = s.call >= 0 ? run.calls[s.call] : null;
    if (call && call.array >= 0) {
      const key = call.array + ':' + call.slot;
      const active = step <= call.last;
      for (const b of mem.slots[key] || []) {
        b.setAttribute('visibility', 'visible');
        b.setAttribute('class', 'sel' + (active ? '' : ' last') + (b.getAttribute('class').includes('past') ? ' past' : ''));
      }
      if (active) for (const a of mem.arrows) if (a.key === key && a.path) a.path.setAttribute('class', 'arrow hot');
      root.dataset.selected = run.arrays[call.array].name + '[' + call.slot + ']';
      // Keep the slot in view.
      const b = (mem.slots[key] || [])[0], box = $('mem-box');
      if (b) {
        const y = Number(b.getAttribute('y'));
        if (y < box.scrollTop || y > box.scrollTop + box.clientHeight - 40) box.scrollTop = y - 60;
      }
    }
    const count = run.counter >= 0 ? v[run.counter] : null;
    root.dataset.count = count == null ? '' : BigInt(count).toString();
    if (mem.counterText) mem.counterText.textContent = 'tail_call_cnt = ' + (count == null ? '?' : BigInt(count).toString());
    const hop = s.hop >= 0 ? run.hops[s.hop].prog : null;
    for (const [name, p] of Object.entries(mem.progs)) p.box.setAttribute('class', 'box prog' + (name === hop ? ' running' : ''));
  }

  // ---- the chain of programs

  function drawChain() {
    const box = $('chain');
    box.replaceChildren();
    box.className = run.hops.length > 8 ? 'compact' : '';
    run.hops.forEach((h, j) => {
      if (h.call >= 0) {
        const c = run.calls[h.call];
        const e = html('div', { class: 'edge', 'data-call': h.call, title: c.text }, html('b', {}, '→'),
          'tail call', html('br'), 'slot ' + c.slot + ' ✔');
        e.addEventListener('click', () => go(c.first));
        box.append(e);
      }
      const misses = run.calls.filter((c) => c.hop === j && !c.taken)
        .map((c) => html('div', { class: 'miss' }, '✘ slot ' + c.slot + ': ' + c.failed + ' failed'));
      const e = html('div', { class: 'hop', 'data-hop': j, title: h.prog + ' starts with tail_call_cnt = ' + h.count },
        html('div', { class: 'name' }, h.prog), html('div', { class: 'cnt' }, (run.hops.length > 8 ? 'cnt ' : 'tail_call_cnt = ') + h.count), ...misses);
      e.addEventListener('click', () => go(Math.min(h.step, run.steps.length - 1)));
      box.append(e);
    });
  }

  function showChain() {
    const hop = run.steps[step].hop;
    for (const e of $('chain').querySelectorAll('.hop')) {
      const j = Number(e.dataset.hop);
      e.className = 'hop' + (j === hop ? ' now' : j > hop ? ' later' : '');
    }
    const call = run.steps[step].call;
    for (const e of $('chain').querySelectorAll('.edge')) {
      const c = run.calls[Number(e.dataset.call)];
      e.className = 'edge' + (Number(e.dataset.call) === call && step <= c.last ? ' now' : '');
    }
  }

  // ---- the current step

  function showStep() {
    const s = run.steps[step];
    const now = $('now');
    const checks = (s.checks || []).map((c) =>
      html('span', { class: 'check ' + (c.passed ? 'pass' : 'fail') }, (c.passed ? '✔ ' : '✘ ') + c.text));
    const parts = [
      html('div', { class: 'where' }, s.where),
      html('div', { class: 'place' }, s.place),
      html('div', { class: 'insn' }, s.insn, s.note ? html('span', { class: 'note' }, '   ; ' + s.note) : null),
    ];
    if (checks.length) parts.push(html('div', { class: 'checks' }, ...checks));
    const detail = (s.detail || []).filter((d) => !(s.checks || []).some((c) => c.text === d));
    if (detail.length) parts.push(html('ul', {}, ...detail.map((d) => html('li', {}, d))));
    if (s.events && s.events.length) {
      parts.push(html('ul', {}, ...s.events.map((t) => html('li', { class: t.startsWith('**') ? 'tc' : 'ev' }, t))));
    }
    const call = s.call >= 0 ? run.calls[s.call] : null;
    if (call && step <= call.last) {
      let t = `tail call ${s.call + 1} of ${run.calls.length} at ${call.at}: index ${call.index} selects slot ${call.slot}` +
        (call.array >= 0 ? ' of ' + run.arrays[call.array].name : '') + `, tail_call_cnt ${call.count}; `;
      t += call.taken ? 'taken, lands at ' + (call.lands || call.target) : 'falls through: the ' + call.failed + ' fails';
      parts.push(html('div', { class: 'callbox' }, t, call.cost ? html('div', {}, call.cost) : null));
    }
    if (step === run.steps.length - 1) parts.push(html('ul', {}, ...run.end.map((t) => html('li', { class: 'ev' }, t))));
    now.replaceChildren(...parts);
  }

  function showListingStep() {
    for (const e of $('listing').querySelectorAll('.cur')) e.classList.remove('cur');
    const s = run.steps[step];
    const g = grpEls[s.group], r = rowEls[s.row];
    if (g) g.classList.add('cur');
    if (r) r.classList.add('cur');
    // Colour the check badges by what the current tail call decided.
    for (const e of $('listing').querySelectorAll('.check')) e.className = 'check';
    const call = s.call >= 0 ? run.calls[s.call] : null;
    if (call) {
      for (let k = call.first; k <= Math.min(step, call.last); k++) {
        const st = run.steps[k], row = rowEls[st.row];
        const badge = row && row.querySelector('.check');
        for (const c of st.checks || []) if (badge) badge.className = 'check ' + (c.passed ? 'pass' : 'fail');
      }
    }
    const target = r || g;
    if (target) {
      const box = $('listing');
      const top = target.offsetTop - box.offsetTop;
      if (top < box.scrollTop + 20 || top > box.scrollTop + box.clientHeight - 40) box.scrollTop = top - box.clientHeight / 3;
    }
  }

  function go(k) {
    step = Math.max(0, Math.min(run.steps.length - 1, k));
    $('slider').value = step;
    $('step-no').textContent = `step ${step + 1} of ${run.steps.length}`;
    showListingStep();
    showStep();
    showMemory();
    showChain();
  }

  // nextCall moves to the first instruction of the next tail call (dir
  // 1) or of the current or previous one (dir -1).
  function nextCall(dir) {
    const firsts = run.calls.map((c) => c.first);
    const k = dir > 0 ? firsts.find((f) => f > step) : firsts.filter((f) => f < step).pop();
    if (k != null) go(k);
    else go(dir > 0 ? run.steps.length - 1 : 0);
  }

  // ---- controls

  $('run').addEventListener('change', (e) => showRun(Number(e.target.value)));
  $('home').addEventListener('click', () => go(0));
  $('back').addEventListener('click', () => go(step - 1));
  $('fwd').addEventListener('click', () => go(step + 1));
  $('nexttc').addEventListener('click', () => nextCall(1));
  $('prevtc').addEventListener('click', () => nextCall(-1));
  $('end').addEventListener('click', () => go(run.steps.length - 1));
  $('slider').addEventListener('input', (e) => go(Number(e.target.value)));
  document.addEventListener('keydown', (e) => {
    if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || e.ctrlKey || e.metaKey || e.altKey) return;
    const keys = {
      ArrowRight: () => go(step + 1), ArrowLeft: () => go(step - 1),
      n: () => nextCall(1), p: () => nextCall(-1),
      Home: () => go(0), End: () => go(run.steps.length - 1),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });

  // ---- start: #run=R&step=N (1-based), or #selftest

  const hash = new URLSearchParams(location.hash.slice(1));
  // A hash that names no run or step (#run=0, #step=x) starts at the first.
  const wanted = (name) => Math.max(1, Math.floor(Number(hash.get(name) || 1)) || 1);
  showRun(Math.min(wanted('run'), D.runs.length) - 1, wanted('step') - 1);
  if (hash.has('selftest')) selftest();

  // selftest presses the keys a student would and records what the page
  // shows after each press.
  function selftest() {
    const seen = () => {
      const cur = $('listing').querySelector('.row.cur') || $('listing').querySelector('.grp.cur');
      return {
        step, row: cur ? cur.id : '',
        selected: $('mem').dataset.selected, count: $('mem').dataset.count,
        highlighted: $('mem').querySelectorAll('.cell.read, .cell.write').length,
        counterText: ($('counter-value') || {}).textContent || '',
      };
    };
    const press = (key) => document.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
    const out = { steps: run.steps.length, calls: run.calls.length, forward: [seen()], keys: {} };
    for (let i = 1; i < Math.min(run.steps.length, 2000); i++) { press('ArrowRight'); out.forward.push(seen()); }
    press('ArrowLeft'); out.keys.back = seen();
    press('Home'); out.keys.home = seen();
    press('n'); out.keys.next = seen();
    press('End'); out.keys.end = seen();
    press('p'); out.keys.prev = seen();
    // The last run, through the selector.
    const pick = $('run');
    pick.value = D.runs.length - 1;
    pick.dispatchEvent(new Event('change'));
    press('n'); out.lastRun = Object.assign(seen(), { run: Number(pick.value) });
    out.errors = errors;
    $('selftest').textContent = JSON.stringify(out);
  }
})();

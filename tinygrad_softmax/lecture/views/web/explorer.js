// The explorer page: step through the engine's backward walk, one chain-rule step at a time.
// Everything it shows comes from the JSON above (written by tinygrad_softmax/lecture/views/explorer.py);
// the page computes nothing itself, it only chooses what to show.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const S = D.steps.length; // positions: 0 the start, 1..S the steps, S + 1 the end
  const END = S + 1;
  const TOP = D.top;
  const $ = (id) => document.getElementById(id);
  const stage = $("stage");
  const caption = $("caption");
  const tip = $("tip");
  const slider = $("slider");
  const showValues = $("show-values");
  const showGrads = $("show-grads");
  const svgs = {};
  document.querySelectorAll("svg.graph").forEach((svg) => { svgs[svg.dataset.variant] = svg; });

  let pos = 0;
  let pinned = null; // the node whose tooltip stays open after a click or Enter

  // ------------------------------------------------------------ text helpers

  function esc(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }

  // The symbol a name defines: "S = Σ exp" is the node of S, and its gradient is ∂L/∂S, never ∂L/∂S = Σ exp.
  // In brackets when it is more than one word: ∂L/∂(Z − max) cannot be read as ∂L/∂Z minus something.
  function sym(name) {
    const symbol = String(name).split(" = ")[0];
    return /[ −+·]/.test(symbol) ? `(${symbol})` : symbol;
  }

  // One format for a whole array, so its columns line up: four decimals, or
  // scientific notation when an entry is too small or too large for that.
  function formatter(values) {
    const finite = values.filter((x) => typeof x === "number" && x !== 0);
    const scientific = finite.some((x) => Math.abs(x) < 1e-4 || Math.abs(x) >= 1e5);
    return (x) => {
      if (typeof x !== "number") return x; // "nan", "inf", "-inf"
      if (x === 0) return scientific ? "0" : "0.0000";
      return scientific ? x.toExponential(3) : x.toFixed(4);
    };
  }

  function num(x) {
    return typeof x === "number" ? formatter([x])(x) : x;
  }

  // An array from the JSON as a bracketed grid (rows are the last axis), or its summary.
  function grid(a, role) {
    const attr = role ? ` data-role="${role}"` : "";
    if (a.summary) {
      const s = a.summary;
      return `<p class="summary"${attr}>${esc(a.text)}: min ${esc(num(s.min))}, max ${esc(num(s.max))}, ` +
        `mean ${esc(num(s.mean))}<br><span class="label">(more than ${D.limits.full} entries: summarised)</span></p>`;
    }
    const f = formatter(a.data);
    const cols = a.shape.length ? a.shape[a.shape.length - 1] : 1;
    let rows = "";
    for (let i = 0; i < a.data.length; i += Math.max(cols, 1)) {
      rows += "<tr>" + a.data.slice(i, i + cols).map((x) => `<td>${esc(f(x))}</td>`).join("") + "</tr>";
    }
    return `<table class="grid"${attr}>${rows}</table>`;
  }

  function figure(title, a, role) {
    return `<figure><figcaption>${esc(title)}</figcaption>${grid(a, role)}</figure>`;
  }

  // ------------------------------------------------------------ which step a node or arrow belongs to

  function nodeStep(name) {
    const info = D.nodes[name];
    return info && typeof info.step === "number" ? info.step : null;
  }

  function state(step) {
    if (step === null || step === undefined) return "nograd";
    if (pos === 0) return "fresh";
    if (pos === END) return "done";
    const current = pos - 1;
    return step < current ? "done" : step === current ? "current" : "waiting";
  }

  function gradKnown(step) {
    return step !== null && step !== undefined && (pos === END || (pos > 0 && step <= pos - 1));
  }

  // ------------------------------------------------------------ the drawing

  function shownSvg() {
    const name = showValues.checked && showGrads.checked ? "both"
      : showValues.checked ? "values" : showGrads.checked ? "grads" : "plain";
    return svgs[name] || svgs.plain;
  }

  // Each node gets a rounded rectangle behind it (the highlight), a tab stop and a label.
  function prepare(svg) {
    if (svg.dataset.ready) return;
    svg.dataset.ready = "1";
    const ns = svg.namespaceURI;
    svg.querySelectorAll("g.node").forEach((g) => {
      const box = g.getBBox();
      const halo = document.createElementNS(ns, "rect");
      halo.setAttribute("class", "halo");
      halo.setAttribute("x", box.x - 8);
      halo.setAttribute("y", box.y - 8);
      halo.setAttribute("width", box.width + 16);
      halo.setAttribute("height", box.height + 16);
      halo.setAttribute("rx", 12);
      g.insertBefore(halo, g.firstChild);
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      g.setAttribute("aria-label", spoken(g.dataset.name));
      g.addEventListener("mouseenter", (event) => { if (!pinned) showTip(g, event); });
      g.addEventListener("mousemove", (event) => { if (!pinned) place(event.clientX, event.clientY); });
      g.addEventListener("mouseleave", () => { if (!pinned) hideTip(); });
      g.addEventListener("focus", () => { if (!pinned) showTip(g); });
      g.addEventListener("blur", () => { if (!pinned) hideTip(); });
      g.addEventListener("click", (event) => { event.stopPropagation(); pin(g, event); });
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); event.stopPropagation(); pin(g); }
      });
    });
  }

  function spoken(name) {
    const info = D.nodes[name] || {};
    if (info.isOp) return `op ${info.op}: ${info.expr}`;
    return `${info.name}, ${info.kind}, shape ${info.shape}`;
  }

  function paint() {
    const svg = shownSvg();
    Object.values(svgs).forEach((s) => s.classList.toggle("shown", s === svg));
    prepare(svg);
    const compared = pos === END && D.comparison ? D.comparison.node : null;
    svg.querySelectorAll("g.node").forEach((g) => {
      const name = g.dataset.name;
      g.setAttribute("class", ["node", state(nodeStep(name)), name === compared ? "compared" : "",
        name === pinned ? "inspected" : ""].join(" ").trim());
    });
    svg.querySelectorAll("g.edge").forEach((g) => {
      g.setAttribute("class", "edge " + state(D.edgeStep[`${g.dataset.tail}->${g.dataset.head}`]));
    });
    document.body.classList.toggle("walking", pos > 0 && pos < END);
    sizeSvg(svg);
    follow(svg);
  }

  // Two views: the whole graph fitted to the stage, or (the default) the node of the step and
  // its neighbours (the loss at the start, the logits at the end) as large as the stage holds
  // them, at most 2 pixels per unit of the drawing, the view following the walk. Neither
  // shrinks the text below MIN_TEXT px (a node's smallest text is SMALLEST units of the
  // drawing): a drawing that would need it scrolls instead, and the view pans with the walk.
  const MIN_TEXT = 12;
  const SMALLEST = 10;

  function wholeGraph() {
    return $("whole").getAttribute("aria-pressed") === "true";
  }

  // The node this position is about, and the nodes one arrow away from it.
  function focusNodes(svg) {
    const target = pos === 0 ? svg.querySelector(`g.node[data-name="${D.steps[0].node}"]`)
      : svg.querySelector("g.node.current, g.node.compared") ||
        svg.querySelector(`g.node[data-name="${D.steps[0].node}"]`);
    return target ? [target, ...neighbours(svg, target.dataset.name)] : [];
  }

  // Their box in the drawing's own units.
  function unitsBox(svg, nodes) {
    const boxes = nodes.map((g) => g.getBBox());
    const x0 = Math.min(...boxes.map((b) => b.x));
    const y0 = Math.min(...boxes.map((b) => b.y));
    return {
      width: Math.max(...boxes.map((b) => b.x + b.width)) - x0,
      height: Math.max(...boxes.map((b) => b.y + b.height)) - y0,
    };
  }

  function sizeSvg(svg) {
    const box = svg.viewBox.baseVal;
    if (!box || !box.height) {
      svg.style.width = svg.style.height = "";
      return;
    }
    // Twice: the first size may add a scroll bar, which takes room from the stage.
    const style = getComputedStyle(stage);
    const padY = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom) + 8;
    const padX = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight) + 8;
    const near = focusNodes(svg);
    for (let pass = 0; pass < 2; pass++) {
      const roomY = stage.clientHeight - padY;
      const roomX = stage.clientWidth - padX;
      let fit;
      if (wholeGraph() || !near.length) fit = Math.min(roomY / box.height, roomX / box.width);
      else {
        const u = unitsBox(svg, near);
        fit = Math.min(2.0, roomY / u.height, roomX / u.width);
      }
      const scale = Math.max(MIN_TEXT / SMALLEST, fit);
      svg.style.width = `${box.width * scale}px`;
      svg.style.height = `${box.height * scale}px`;
    }
  }

  // Keep the node of the step and its neighbours in view: sideways, centred on them when they near
  // an edge; vertically, at the top of the stage.
  function follow(svg) {
    const near = focusNodes(svg);
    if (!near.length) return;
    const s = stage.getBoundingClientRect();
    let boxes = near.map((g) => g.getBoundingClientRect());
    const span = (key0, key1) => Math.max(...boxes.map((r) => r[key1])) - Math.min(...boxes.map((r) => r[key0]));
    // Neighbours too far apart to show at a readable size (an arrow skipping over steps): the node itself.
    if (span("left", "right") > stage.clientWidth || span("top", "bottom") > stage.clientHeight) boxes = boxes.slice(0, 1);
    const left = Math.min(...boxes.map((r) => r.left));
    const right = Math.max(...boxes.map((r) => r.right));
    const top = Math.min(...boxes.map((r) => r.top));
    const bottom = Math.max(...boxes.map((r) => r.bottom));
    const inner = { right: s.left + stage.clientWidth, bottom: s.top + stage.clientHeight };
    const margin = 4;
    if (left < s.left + margin || right > inner.right - margin) {
      stage.scrollLeft += (left + right) / 2 - (s.left + stage.clientWidth / 2);
    }
    // Vertically they go to the top of the stage: no blank band above them, more below.
    stage.scrollTop += top - (s.top + margin);
  }

  // The nodes one arrow away from ``name`` (its op and the tensors that op reads and makes).
  function neighbours(svg, name) {
    const near = new Set();
    svg.querySelectorAll("g.edge").forEach((e) => {
      if (e.dataset.tail === name) near.add(e.dataset.head);
      if (e.dataset.head === name) near.add(e.dataset.tail);
    });
    return [...near].map((n) => svg.querySelector(`g.node[data-name="${n}"]`)).filter((g) => g);
  }

  // ------------------------------------------------------------ the caption

  function startCaption() {
    const root = D.nodes[D.steps[0].node];
    const loss = root && root.values && root.values.data ? ` = ${esc(num(root.values.data[0]))}` : "";
    return `<div class="words"><p class="head"><span class="where">Start</span> · the forward pass is done:
      ${esc(TOP)}${loss}</p>
      <p>The backward walk takes ${S} steps, one per node, in reverse topological order (the order of
      <span class="math">engine.walk</span>, as in <span class="math">explain</span>). It starts at
      ${esc(TOP)} with <span class="math">∂${esc(TOP)}/∂${esc(TOP)} = 1</span>.</p>
      <p class="label">Press <kbd>→</kbd> or Next.</p></div>`;
  }

  function stepCaption(k) {
    const s = D.steps[k];
    const where = `<span class="where">Step ${k + 1} of ${S}</span>`;
    const arrived = figure(`∂${TOP}/∂${sym(s.name)} has arrived · ${s.grad.text}`, s.grad, "arrived");
    if (s.leaf) {
      return `<div class="words"><p class="head">${where} · ${esc(s.name)} is a leaf</p>
        <p>Its gradient is complete: it is added into <span class="math">${esc(s.name)}.grad</span>.</p>
        <p><span class="label">shape</span> ${esc(s.shape)}</p></div>
        <div class="arrays">${arrived}</div>`;
    }
    const ins = s.inputs.map((p) => `${esc(p.name)} ${esc(p.shape)}`).join(", ");
    const settings = s.settings ? ` <span class="label">(${esc(s.settings)})</span>` : "";
    const sent = s.sent.map((p) => p.none
      ? `${esc(p.name)}: needs no gradient`
      : `<span class="math">∂${esc(TOP)}/∂${esc(sym(p.name))}</span> ${esc(p.shape)}` +
        (p.note ? ` <span class="label">(${esc(p.note)})</span>` : "")).join("; ");
    return `<div class="words"><p class="head">${where} · <span class="math">${esc(s.expr)}</span>${settings}</p>
      <p><span class="label">local rule</span> <span class="math">${esc(s.rule)}</span></p>
      <p><span class="label">shapes</span> ${ins} → ${esc(s.name)} ${esc(s.shape)}</p>
      <p><span class="label">chain rule sends back</span> ${sent}</p></div>
      <div class="arrays">${arrived}</div>`;
  }

  // The formulas the engine derived from the same graph (the rules run on symbolic values).
  function derived(lines) {
    if (!lines || !lines.length) return "";
    return `<p data-role="formula"><span class="label">derived by the engine</span> ` +
      lines.map((l) => `<span class="math">${esc(l)}</span>`).join("; ") + `</p>`;
  }

  function endCaption() {
    const where = `<span class="where">End</span> · all ${S} steps done`;
    const c = D.comparison;
    if (!c) {
      const leaves = D.leaves.map((l) => figure(`∂${TOP}/∂${sym(l.name)} · ${l.grad.text}`, l.grad, "leaf")).join("");
      return `<div class="words"><p class="head">${where}</p>
        <p>Every leaf that needs a gradient now has it: ${D.leaves.map((l) => esc(l.name)).join(", ")}.</p></div>
        <div class="arrays">${leaves}</div>`;
    }
    const good = c.difference <= 1e-6;
    return `<div class="words"><p class="head">${where}</p>
      <p>At the logits ${esc(c.name)} (${esc(c.autograd.text)}, classes on axis ${c.axis}): the chain rule's
      <span class="math">∂${esc(TOP)}/∂${esc(c.name)}</span>, step by step, next to the closed form
      <span class="math">(P − Y)/N</span>, computed without the engine.</p>
      <p class="verdict${good ? "" : " bad"}" data-role="difference">max |∂${esc(TOP)}/∂${esc(c.name)} − (P − Y)/N| =
      ${c.difference.toExponential(2)}</p>${derived(c.formula)}</div>
      <div class="arrays">${figure(`∂${TOP}/∂${c.name} (chain rule)`, c.autograd, "autograd")}
      ${figure("(P − Y)/N (closed form)", c.closed, "closed-form")}</div>`;
  }

  // ------------------------------------------------------------ the tooltip

  function tipHtml(name) {
    const info = D.nodes[name];
    if (!info) return "";
    if (info.isOp) {
      const when = typeof info.step === "number" ? `<p>Its rule runs in step ${info.step + 1} of ${S}.</p>` : "";
      return `<h2>${esc(info.op)} <span class="label">op</span></h2>
        <p class="math">${esc(info.expr)}</p>
        ${info.settings ? `<p><span class="label">settings</span> ${esc(info.settings)}</p>` : ""}
        <p><span class="label">local rule</span> <span class="math">${esc(info.rule)}</span></p>${when}`;
    }
    let grad;
    if (!info.requiresGrad) grad = `<p class="pending">needs no gradient</p>`;
    else if (gradKnown(info.step)) grad = figure(`∂${TOP}/∂${sym(info.name)}`, info.grad, "tip-grad");
    else grad = `<p class="pending">∂${esc(TOP)}/∂${esc(sym(info.name))} arrives in step ${info.step + 1} of ${S}</p>`;
    const made = info.expr ? `<p class="math">${esc(info.expr)}</p>` : "";
    const rule = info.folded ? `<p><span class="label">local rule</span> <span class="math">${esc(info.rule)}</span></p>` : "";
    return `<h2>${esc(info.name)} <span class="label">${esc(info.kind)}</span></h2>
      <p><span class="label">shape</span> ${esc(info.shape)} · <span class="label">dtype</span> ${esc(info.dtype)}</p>
      ${made}${rule}${figure("values", info.values, "tip-values")}${grad}`;
  }

  function place(x, y) {
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const left = x + 18 + w > window.innerWidth ? Math.max(4, x - 18 - w) : x + 18;
    const topY = y + 18 + h > window.innerHeight ? Math.max(4, window.innerHeight - h - 4) : y + 18;
    tip.style.left = `${left}px`;
    tip.style.top = `${topY}px`;
  }

  function showTip(g, event) {
    tip.innerHTML = tipHtml(g.dataset.name);
    tip.dataset.name = g.dataset.name;
    tip.hidden = false;
    if (event && typeof event.clientX === "number" && event.detail !== 0) {
      place(event.clientX, event.clientY);
    } else {
      const r = g.getBoundingClientRect();
      place(r.right, r.top);
    }
  }

  function hideTip() {
    tip.hidden = true;
    delete tip.dataset.name;
  }

  function pin(g, event) {
    pinned = g.dataset.name;
    showTip(g, event);
    paint();
  }

  function unpin() {
    pinned = null;
    hideTip();
    paint();
  }

  // ------------------------------------------------------------ moving

  function go(to) {
    pos = Math.max(0, Math.min(END, to));
    slider.value = String(pos);
    $("counter").textContent = pos === 0 ? "Start" : pos === END ? "End" : `Step ${pos} / ${S}`;
    $("first").disabled = $("prev").disabled = pos === 0;
    $("next").disabled = $("last").disabled = pos === END;
    caption.innerHTML = pos === 0 ? startCaption() : pos === END ? endCaption() : stepCaption(pos - 1);
    document.body.dataset.position = String(pos);
    stage.setAttribute("aria-label", alt());
    paint();
    if (!tip.hidden && tip.dataset.name) tip.innerHTML = tipHtml(tip.dataset.name);
  }

  // The drawing in words (the stage's label): what it shows at this position and how it is marked.
  function alt() {
    if (pos === 0) return `The computation graph of ${TOP}, before the backward walk: ${S} steps to come, from ${TOP}.`;
    if (pos === END) {
      const c = D.comparison;
      return `The computation graph after all ${S} steps, every gradient written on its tensor` +
        (c ? `; the logits ${c.name} have a thick green border: their gradient equals (P − Y)/N, ` +
          `max difference ${c.difference.toExponential(2)}.` : ".");
    }
    const s = D.steps[pos - 1];
    const what = s.leaf ? `${s.name}, a leaf: its gradient is complete` : s.expr;
    return `The computation graph at step ${pos} of ${S}: ${what}. The node being processed has a thick ` +
      `orange border and shows ∂${TOP}/∂${sym(s.name)} (${s.grad.text}); nodes already done are drawn in black, ` +
      `nodes still waiting in grey.`;
  }

  function toggleWhole() {
    const whole = !wholeGraph();
    $("whole").setAttribute("aria-pressed", String(whole));
    stage.classList.toggle("whole", whole);
    paint();
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen();
  }

  slider.max = String(END);
  slider.addEventListener("input", () => go(Number(slider.value)));
  $("first").addEventListener("click", () => go(0));
  $("prev").addEventListener("click", () => go(pos - 1));
  $("next").addEventListener("click", () => go(pos + 1));
  $("last").addEventListener("click", () => go(END));
  $("whole").addEventListener("click", toggleWhole);
  showValues.addEventListener("change", paint);
  showGrads.addEventListener("change", paint);
  if (document.fullscreenEnabled) $("fullscreen").addEventListener("click", toggleFullscreen);
  else $("fullscreen").hidden = true;
  if (!D.limits.drawn) {
    showValues.checked = showGrads.checked = false;
    showValues.disabled = showGrads.disabled = true;
  }
  const notes = [];
  if (D.limits.summarised) notes.push(`Arrays with more than ${D.limits.full} entries are summarised by their min, max and mean.`);
  if (!D.limits.drawn) notes.push(`The graph has more than ${D.limits.drawnLimit} tensors, so values and gradients are left off the drawing: hover a node to see them.`);
  $("limits").textContent = notes.join(" ");

  document.addEventListener("click", (event) => { if (pinned && !tip.contains(event.target)) unpin(); });
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const onControl = event.target instanceof HTMLButtonElement ||
      (event.target instanceof HTMLInputElement && event.target.type === "checkbox");
    const moves = {
      ArrowRight: () => go(pos + 1), PageDown: () => go(pos + 1), ArrowDown: () => go(pos + 1),
      ArrowLeft: () => go(pos - 1), PageUp: () => go(pos - 1), ArrowUp: () => go(pos - 1),
      Home: () => go(0), End: () => go(END),
      Escape: () => { if (pinned) unpin(); else hideTip(); },
    };
    const keys = {
      v: () => { if (!showValues.disabled) { showValues.checked = !showValues.checked; paint(); } },
      g: () => { if (!showGrads.disabled) { showGrads.checked = !showGrads.checked; paint(); } },
      w: toggleWhole,
      f: () => { if (document.fullscreenEnabled) toggleFullscreen(); },
    };
    if (event.key === " " && !onControl) moves[event.shiftKey ? "ArrowLeft" : "ArrowRight"]();
    else if (moves[event.key]) moves[event.key]();
    else if (keys[event.key.toLowerCase()]) keys[event.key.toLowerCase()]();
    else return;
    event.preventDefault();
  });
  window.addEventListener("resize", () => paint());
  go(0);
})();

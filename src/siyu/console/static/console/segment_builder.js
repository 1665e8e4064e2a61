/* siyu segment builder: edits a rule tree (segments/rules.py) held as JSON in the form's
   hidden `rule` field, the single source of truth. Every change re-renders the tree from
   the JSON and, debounced, asks the server for the live count; the server validates the
   rule and names the path of a problem, which is shown beside that condition. No
   dependencies; the drop-downs come from the catalog the page embeds. */
(function () {
  "use strict";
  const mount = document.getElementById("rule-builder");
  const hidden = document.getElementById("rule-json");
  const configNode = document.getElementById("builder-config");
  if (!mount || !hidden || !configNode) return;
  const cfg = JSON.parse(configNode.textContent);
  const S = cfg.schema, L = cfg.labels;
  const VALUELESS = ["is_set", "not_set", "is_true", "is_false"];
  const DAY_OPS = ["within_last_days", "more_than_days_ago", "within_next_days", "anniversary_within_next_days"];
  const LIST_OPS = ["in", "not_in"];
  const PROPERTY_TYPES = {string: "text", number: "number", boolean: "bool"};
  const GROUPS = ["and", "or"];
  const csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

  let rule = load(hidden.value);
  let serverError = cfg.error || null;

  function load(text) {
    let parsed = null;
    try { parsed = JSON.parse(text || "null"); } catch (e) { parsed = null; }
    if (!parsed || typeof parsed !== "object") return {type: "and", rules: []};
    const inner = parsed.type === "not" ? parsed.rule : parsed;
    if (inner && GROUPS.includes(inner.type)) return parsed;
    return {type: "and", rules: [parsed]};  // the editor's root is always a group
  }

  // --- small DOM helpers ------------------------------------------------------------------
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "value") node.value = v;
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(c => c && node.append(c));
    return node;
  }
  function select(key, label, options, current, onchange, extra) {
    const s = el("select", Object.assign({"data-key": key, "aria-label": label}, extra || {}));
    options.forEach(o => {
      if (o.group) {
        const g = el("optgroup", {label: o.group});
        o.options.forEach(x => g.append(option(x, current)));
        s.append(g);
      } else s.append(option(o, current));
    });
    s.addEventListener("change", () => onchange(s));
    return s;
  }
  function option(o, current) {
    const selected = Array.isArray(current) ? current.map(String).includes(String(o.value)) : String(o.value) === String(current);
    return el("option", {value: String(o.value), text: o.label, selected: selected, disabled: o.disabled});
  }
  function pick(pairs) { return Object.entries(pairs).map(([value, label]) => ({value, label})); }
  function opsFor(type, ops) { return (ops || S.operators[type] || []).map(op => ({value: op, label: L.ops[op] || op})); }
  function findField(list, key) { return list.find(f => f.key === key) || list[0]; }
  function button(text, cls, onclick, key) {
    return el("button", {type: "button", class: "btn small " + (cls || ""), text, onclick, "data-key": key});
  }

  // --- defaults ---------------------------------------------------------------------------
  function daysAgo(n) {
    const d = new Date(cfg.today + "T00:00:00");
    d.setDate(d.getDate() - n);
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  function defaultValue(type, op, choices) {
    if (VALUELESS.includes(op)) return null;
    if (DAY_OPS.includes(op)) return 7;
    if (type === "date" || type === "datetime") return op === "between" ? [daysAgo(30), cfg.today] : cfg.today;
    if (LIST_OPS.includes(op)) return [];
    if (op === "between") return type === "money" ? ["0", "1000"] : [0, 100];
    if (type === "choice") return choices && choices.length ? choices[0].value : "";
    if (type === "staff") return cfg.staff.length ? cfg.staff[0].id : null;
    if (type === "number") return 0;
    if (type === "money") return "0";
    return "";
  }
  function shape(op) {
    if (VALUELESS.includes(op)) return "none";
    if (DAY_OPS.includes(op)) return "days";
    if (LIST_OPS.includes(op)) return "list";
    return op === "between" ? "between" : "one";
  }
  function setOp(node, type, op, choices) {
    const keep = shape(node.op) === shape(op) && node.op !== undefined;
    node.op = op;
    if (!keep) node.value = defaultValue(type, op, choices);
  }
  function newCondition(type) {
    switch (type) {
      case "field": { const f = S.contact_fields[0]; return {type, field: f.key, op: f.operators[0], value: defaultValue(f.type, f.operators[0], f.choices)}; }
      case "attribute": {
        const a = cfg.attributes[0];
        if (!a) return {type, key: "", op: "eq", value: ""};
        const op = S.operators[a.type][0];
        return {type, key: a.key, op, value: defaultValue(a.type, op, a.choices)};
      }
      case "tags": return {type, op: "any", value: []};
      case "identity": return {type, op: "has", value: S.identity_kinds[0].value};
      case "consent": return {type, channel: S.consent_channels[0].value, op: "is", value: "granted"};
      case "orders": return {type, metric: "count", op: "gte", value: 1, window: null};
      case "bought": return {type, by: "product", op: "any", value: [], window: null};
      case "event": return {type, event: cfg.events[0] || "", op: "gte", value: 1, window: {last_days: 30}, where: []};
      case "event_time": return {type, event: cfg.events[0] || "", which: "last", op: "within_last_days", value: 7};
      case "score": { const f = S.score_fields[0]; return {type, field: f.key, op: "eq", value: f.choices[0].value}; }
      case "segment": return {type, op: "in", value: cfg.segments.length ? cfg.segments[0].id : null};
      case "sample": return {type, value: 10, seed: ""};
      default: return {type: "and", rules: []};
    }
  }

  // --- changes ----------------------------------------------------------------------------
  let timer = null, sequence = 0;
  function changed(structural) {
    hidden.value = JSON.stringify(rule);
    serverError = null;
    if (structural) render();
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }

  function render() {
    const active = document.activeElement;
    const focusKey = active && mount.contains(active) ? active.getAttribute("data-key") : null;
    const root = {get: () => rule, set: n => { rule = n; }, remove: null};
    mount.replaceChildren(renderNode(rule, "rule", root));
    if (focusKey) {
      const again = mount.querySelector('[data-key="' + CSS.escape(focusKey) + '"]');
      if (again) again.focus();
    }
    showError(serverError);
  }

  function renderNode(node, path, slot) {
    if (GROUPS.includes(node.type)) return renderGroup(node, path, slot, false);
    if (node.type === "not") {
      const inner = {get: () => node.rule, set: n => { node.rule = n; }, remove: slot.remove};
      if (node.rule && GROUPS.includes(node.rule.type)) return renderGroup(node.rule, path + ".rule", slot, true);
      return el("div", {class: "rb-not", "data-path": path}, [
        el("div", {class: "rb-group-head"}, [
          el("strong", {text: L.not}),
          button(L.unwrap_not, "", () => { slot.set(node.rule); changed(true); }, path + ":unwrap"),
        ]),
        renderNode(node.rule || newCondition("field"), path + ".rule", inner),
      ]);
    }
    return renderCondition(node, path, slot);
  }

  // A group; `outer` is the slot holding what is drawn (the group, or the "not" around it).
  function renderGroup(group, path, outer, negated) {
    const children = el("div", {class: "rb-children"});
    group.rules = Array.isArray(group.rules) ? group.rules : [];
    group.rules.forEach((child, i) => {
      if (i > 0) children.append(el("div", {class: "rb-joiner", text: group.type === "and" ? L.and : L.or}));
      const slot = {
        get: () => group.rules[i],
        set: n => { group.rules[i] = n; },
        remove: () => { group.rules.splice(i, 1); },
      };
      children.append(renderNode(child, path + ".rules[" + i + "]", slot));
    });
    if (!group.rules.length) children.append(el("p", {class: "muted small rb-empty", text: L.empty_group}));
    const negate = el("input", {type: "checkbox", checked: negated, "data-key": path + ":not", onchange: () => {
      outer.set(negated ? group : {type: "not", rule: group});
      changed(true);
    }});
    const head = el("div", {class: "rb-group-head"}, [
      select(path + ":mode", L.all + " / " + L.any, [{value: "and", label: L.all}, {value: "or", label: L.any}], group.type,
        s => { group.type = s.value; changed(true); }, {class: "rb-mode"}),
      el("label", {class: "check-line rb-negate"}, [negate, document.createTextNode(" " + L.not)]),
    ]);
    if (outer.remove) {
      const remove = button("×", "rb-remove", () => { outer.remove(); changed(true); }, path + ":remove");
      remove.setAttribute("aria-label", L.remove);
      head.append(remove);
    }
    const foot = el("div", {class: "rb-group-foot"}, [
      button("＋ " + L.add_condition, "rb-add-condition", () => { group.rules.push(newCondition("field")); changed(true); }, path + ":add"),
      button("＋ " + L.add_group, "rb-add-group", () => { group.rules.push({type: "and", rules: [newCondition("field")]}); changed(true); }, path + ":addgroup"),
    ]);
    const box = el("div", {class: "rb-group" + (negated ? " negated" : ""), "data-path": negated ? path.replace(/\.rule$/, "") : path}, [head, children, foot]);
    box.append(el("div", {class: "rb-error", "data-error-for": path}));
    return box;
  }

  function renderCondition(node, path, slot) {
    const types = S.node_types.filter(t => !GROUPS.includes(t.type) && t.type !== "not").map(t => ({
      value: t.type, label: t.label,
      disabled: (t.type === "attribute" && !cfg.attributes.length) || (t.type === "segment" && !cfg.segments.length),
    }));
    const row = el("div", {class: "rb-cond-row"}, [
      select(path + ":type", L.condition_type, types, node.type, s => { slot.set(newCondition(s.value)); changed(true); }, {class: "rb-type"}),
    ]);
    (EDITORS[node.type] || (() => []))(node, path, row);
    const remove = button("×", "rb-remove", () => { slot.remove(); changed(true); }, path + ":remove");
    remove.setAttribute("aria-label", L.remove);
    row.append(remove);
    const below = row.querySelector(".rb-where");  // property filters go under the row
    if (below) row.append(below);
    return el("div", {class: "rb-cond", "data-path": path}, [row, el("div", {class: "rb-error", "data-error-for": path})]);
  }

  // --- value editors ----------------------------------------------------------------------
  // Edits node[key] for a comparison of `type` with operator node.op.
  function valueEditor(node, key, type, choices, path) {
    const op = node.op, k = path + ":" + key;
    const set = v => { node[key] = v; changed(false); };
    const out = [];
    if (VALUELESS.includes(op)) return out;
    if (DAY_OPS.includes(op)) {
      out.push(number(k, L.days, node[key], v => set(toInt(v)), "1", "0"), unit(L.days));
      return out;
    }
    if (type === "date" || type === "datetime") {
      if (op === "between") {
        const pair = Array.isArray(node[key]) ? node[key] : [cfg.today, cfg.today];
        out.push(date(k + "0", pair[0], v => { pair[0] = v; set(pair); }), unit(L.to), date(k + "1", pair[1], v => { pair[1] = v; set(pair); }));
      } else out.push(date(k, node[key], set));
      return out;
    }
    const choiceList = type === "staff" ? cfg.staff.map(s => ({value: s.id, label: s.name})) : (choices || []);
    const cast = type === "staff" ? Number : (v => v);
    if (LIST_OPS.includes(op)) {
      if (type === "choice" || type === "staff") {
        const s = select(k, L.value, choiceList, node[key] || [], s2 => set(Array.from(s2.selectedOptions).map(o => cast(o.value))), {multiple: true, class: "rb-multi", size: Math.min(4, Math.max(2, choiceList.length))});
        out.push(s);
      } else {
        out.push(el("input", {type: "text", class: "rb-value", "data-key": k, "aria-label": L.value, placeholder: L.list_hint,
          value: (node[key] || []).join("，"), oninput: e => set(e.target.value.split(/[,，、\n]/).map(x => x.trim()).filter(Boolean).map(x => type === "number" ? Number(x) : x))}));
      }
      return out;
    }
    if (op === "between") {
      const pair = Array.isArray(node[key]) ? node[key] : [0, 0];
      const conv = type === "money" ? (v => v) : toNumber;
      out.push(number(k + "0", L.value, pair[0], v => { pair[0] = conv(v); set(pair); }, type === "money" ? "0.01" : "any"),
        unit(L.to), number(k + "1", L.value, pair[1], v => { pair[1] = conv(v); set(pair); }, type === "money" ? "0.01" : "any"));
      if (type === "money") out.push(unit(L.yuan));
      return out;
    }
    if (type === "choice" || type === "staff") {
      out.push(select(k, L.value, choiceList, node[key], s => set(cast(s.value)), {class: "rb-value"}));
    } else if (type === "number") {
      out.push(number(k, L.value, node[key], v => set(toNumber(v)), "any"));
    } else if (type === "money") {
      out.push(number(k, L.value, node[key], v => set(v === "" ? null : v), "0.01"), unit(L.yuan));
    } else {
      out.push(el("input", {type: "text", class: "rb-value", "data-key": k, "aria-label": L.value, value: node[key] == null ? "" : String(node[key]), oninput: e => set(e.target.value)}));
    }
    return out;
  }
  function number(key, label, value, onset, step, min) {
    return el("input", {type: "number", class: "rb-value rb-number", "data-key": key, "aria-label": label, step: step || "any", min,
      value: value == null ? "" : String(value), oninput: e => onset(e.target.value)});
  }
  function date(key, value, onset) {
    return el("input", {type: "date", class: "rb-value", "data-key": key, "aria-label": L.value, value: value || "", oninput: e => onset(e.target.value)});
  }
  function unit(text) { return el("span", {class: "muted rb-unit", text}); }
  function toNumber(v) { return v === "" || v === null ? null : Number(v); }
  function toInt(v) { return v === "" || v === null ? null : parseInt(v, 10); }

  // A comparison of a catalog field: field drop-down, operator drop-down, value.
  function fieldComparison(node, path, row, fields, fieldKey, fieldLabel) {
    const field = findField(fields, node[fieldKey]) || {type: "text", operators: [], choices: []};
    if (node[fieldKey] !== field.key) node[fieldKey] = field.key;
    row.append(select(path + ":" + fieldKey, fieldLabel, fields.map(f => ({value: f.key, label: f.label})), field.key, s => {
      const next = findField(fields, s.value);
      const ops = next.operators || S.operators[next.type];
      node[fieldKey] = next.key;
      node.op = ops.includes(node.op) ? node.op : ops[0];
      node.value = defaultValue(next.type, node.op, next.choices);  // another type: start over
      changed(true);
    }, {class: "rb-field"}));
    const ops = field.operators || S.operators[field.type];
    row.append(select(path + ":op", L.operator, opsFor(field.type, ops), node.op, s => { setOp(node, field.type, s.value, field.choices); changed(true); }, {class: "rb-op"}));
    valueEditor(node, "value", field.type, field.choices, path).forEach(x => row.append(x));
  }

  function windowEditor(node, path, row) {
    const w = node.window || null;
    const mode = !w ? "all" : ("last_days" in w ? "last" : "range");
    row.append(select(path + ":window", L.all_time, [{value: "all", label: L.all_time}, {value: "last", label: L.last_days}, {value: "range", label: L.date_range}], mode, s => {
      node.window = s.value === "all" ? null : s.value === "last" ? {last_days: 30} : {from: daysAgo(30), to: cfg.today};
      changed(true);
    }, {class: "rb-window"}));
    if (mode === "last") {
      row.append(number(path + ":last_days", L.days, w.last_days, v => { w.last_days = toInt(v); changed(false); }, "1", "1"), unit(L.days));
    } else if (mode === "range") {
      row.append(date(path + ":from", w.from, v => { w.from = v || null; changed(false); }), unit(L.to), date(path + ":to", w.to, v => { w.to = v || null; changed(false); }));
    }
  }

  function eventName(node, path, row) {
    const listId = "rb-events";
    if (!document.getElementById(listId)) document.body.append(el("datalist", {id: listId}, cfg.events.map(e => el("option", {value: e}))));
    row.append(el("input", {type: "text", class: "rb-event", list: listId, "data-key": path + ":event", "aria-label": L.event_name,
      placeholder: L.event_name, value: node.event || "", oninput: e => { node.event = e.target.value; changed(false); }}));
  }

  const EDITORS = {
    field: (node, path, row) => fieldComparison(node, path, row, S.contact_fields, "field", L.field),
    score: (node, path, row) => fieldComparison(node, path, row, S.score_fields, "field", L.field),
    orders: (node, path, row) => { windowEditor(node, path, row); fieldComparison(node, path, row, S.order_metrics, "metric", L.field); },
    attribute: (node, path, row) => {
      const attrs = cfg.attributes.map(a => ({key: a.key, label: a.label, type: a.type, operators: S.operators[a.type], choices: a.choices}));
      if (!attrs.length) { row.append(unit(L.no_attributes)); return; }
      fieldComparison(node, path, row, attrs, "key", L.field);
    },
    tags: (node, path, row) => {
      row.append(select(path + ":op", L.operator, pick(L.tag_ops), node.op, s => { node.op = s.value; changed(true); }, {class: "rb-op"}));
      if (!cfg.tags.length) { row.append(unit(L.no_tags)); return; }
      const groups = cfg.tags.map(g => ({group: g.group, options: g.tags.map(t => ({value: t.id, label: t.name}))}));
      row.append(select(path + ":value", L.value, groups, node.value || [], s => {
        node.value = Array.from(s.selectedOptions).map(o => Number(o.value)); changed(false);
      }, {multiple: true, class: "rb-multi", size: 4}));
    },
    identity: (node, path, row) => {
      row.append(select(path + ":op", L.operator, pick(L.identity_ops), node.op, s => { node.op = s.value; changed(true); }, {class: "rb-op"}));
      row.append(select(path + ":value", L.value, S.identity_kinds, node.value, s => { node.value = s.value; changed(true); }, {class: "rb-value"}));
    },
    consent: (node, path, row) => {
      row.append(select(path + ":channel", L.field, S.consent_channels, node.channel, s => { node.channel = s.value; changed(true); }, {class: "rb-field"}));
      row.append(select(path + ":op", L.operator, pick(L.consent_ops), node.op, s => { node.op = s.value; changed(true); }, {class: "rb-op"}));
      row.append(select(path + ":value", L.value, S.consent_values, node.value, s => { node.value = s.value; changed(true); }, {class: "rb-value"}));
    },
    bought: (node, path, row) => {
      windowEditor(node, path, row);
      row.append(select(path + ":op", L.operator, pick(L.bought_ops), node.op, s => { node.op = s.value; changed(true); }, {class: "rb-op"}));
      row.append(select(path + ":by", L.field, pick(L.bought_by), node.by, s => { node.by = s.value; changed(true); }, {class: "rb-field"}));
      row.append(el("input", {type: "text", class: "rb-value", "data-key": path + ":value", "aria-label": L.value, placeholder: L.list_hint,
        value: (node.value || []).join("，"), oninput: e => { node.value = e.target.value.split(/[,，、\n]/).map(x => x.trim()).filter(Boolean); changed(false); }}));
    },
    event: (node, path, row) => {
      windowEditor(node, path, row);
      eventName(node, path, row);
      row.append(select(path + ":op", L.operator, S.event_count_operators.map(op => ({value: op, label: L.count_ops[op] || op})), node.op, s => { node.op = s.value; changed(true); }, {class: "rb-op"}));
      row.append(number(path + ":value", L.times, node.value, v => { node.value = toInt(v); changed(false); }, "1", "0"), unit(L.times));
      node.where = Array.isArray(node.where) ? node.where : [];
      const wheres = el("div", {class: "rb-where"});
      node.where.forEach((w, i) => wheres.append(propertyFilter(node, w, i, path + ".where[" + i + "]")));
      wheres.append(button("＋ " + L.add_property, "rb-add-property", () => {
        node.where.push({property: "", kind: "string", op: "eq", value: ""}); changed(true);
      }, path + ":addwhere"));
      row.append(wheres);
    },
    event_time: (node, path, row) => {
      row.append(select(path + ":which", L.field, pick(L.which), node.which, s => { node.which = s.value; changed(true); }, {class: "rb-field"}));
      eventName(node, path, row);
      row.append(select(path + ":op", L.operator, opsFor("date", S.event_time_operators), node.op, s => { setOp(node, "date", s.value); changed(true); }, {class: "rb-op"}));
      valueEditor(node, "value", "date", [], path).forEach(x => row.append(x));
    },
    segment: (node, path, row) => {
      row.append(select(path + ":op", L.operator, pick(L.segment_ops), node.op, s => { node.op = s.value; changed(true); }, {class: "rb-op"}));
      if (!cfg.segments.length) { row.append(unit(L.no_segments)); return; }
      row.append(select(path + ":value", L.value, cfg.segments.map(s => ({value: s.id, label: s.name})), node.value, s => { node.value = Number(s.value); changed(true); }, {class: "rb-value"}));
    },
    sample: (node, path, row) => {
      row.append(number(path + ":value", L.percent, node.value, v => { node.value = toNumber(v); changed(false); }, "0.01", "0"), unit("%"));
      row.append(el("input", {type: "text", class: "rb-value", "data-key": path + ":seed", "aria-label": L.seed, placeholder: L.seed,
        value: node.seed || "", oninput: e => { node.seed = e.target.value; changed(false); }}));
    },
  };

  function propertyFilter(event, w, i, path) {
    const type = PROPERTY_TYPES[w.kind] || "text";
    const row = el("div", {class: "rb-property", "data-path": path}, [
      unit(L.where),
      el("input", {type: "text", class: "rb-value", "data-key": path + ":property", "aria-label": L.property, placeholder: L.property,
        value: w.property || "", oninput: e => { w.property = e.target.value; changed(false); }}),
      select(path + ":kind", L.field, pick(L.property_kinds), w.kind, s => {
        w.kind = s.value;
        const ops = S.operators[PROPERTY_TYPES[w.kind]];
        setOp(w, PROPERTY_TYPES[w.kind], ops.includes(w.op) ? w.op : ops[0]);
        w.value = defaultValue(PROPERTY_TYPES[w.kind], w.op);
        changed(true);
      }),
      select(path + ":op", L.operator, opsFor(type), w.op, s => { setOp(w, type, s.value); changed(true); }, {class: "rb-op"}),
    ]);
    valueEditor(w, "value", type, [], path).forEach(x => row.append(x));
    const remove = button("×", "rb-remove", () => { event.where.splice(i, 1); changed(true); }, path + ":remove");
    remove.setAttribute("aria-label", L.remove);
    row.append(remove, el("div", {class: "rb-error", "data-error-for": path}));
    return row;
  }

  // --- errors and the live count ------------------------------------------------------------
  function showError(error) {
    mount.querySelectorAll(".rb-error").forEach(e => { e.textContent = ""; });
    mount.querySelectorAll(".rb-invalid").forEach(e => e.classList.remove("rb-invalid"));
    if (!error || !error.path) return;
    // the deepest element whose path is the error's path or a prefix of it
    let best = null;
    mount.querySelectorAll("[data-error-for]").forEach(slot => {
      const p = slot.getAttribute("data-error-for");
      const boundary = error.path.charAt(p.length);
      if (error.path.startsWith(p) && (boundary === "" || boundary === "." || boundary === "[")) {
        if (!best || p.length > best.getAttribute("data-error-for").length) best = slot;
      }
    });
    best = best || mount.querySelector("[data-error-for]");
    if (!best) return;
    best.textContent = error.message;
    best.setAttribute("role", "alert");
    best.parentElement.classList.add("rb-invalid");
  }

  const countNode = document.getElementById("preview-count");
  const statusNode = document.getElementById("preview-status");
  const textNode = document.getElementById("preview-text");
  const sampleNode = document.getElementById("preview-sample");

  function preview() {
    const mine = ++sequence;
    statusNode.textContent = L.counting;
    fetch(cfg.preview_url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: JSON.stringify({rule, segment_id: cfg.segment_id}),
    }).then(response => response.json().then(data => ({status: response.status, data})))
      .then(({status, data}) => {
        if (mine !== sequence) return;  // a later edit has asked again
        if (status === 200) {
          serverError = null;
          showError(null);
          countNode.textContent = data.count.toLocaleString("zh-CN");
          countNode.setAttribute("data-count", String(data.count));
          statusNode.textContent = L.contacts;
          textNode.textContent = data.text || "";
          sampleNode.replaceChildren(...data.sample.map(c => el("li", {}, [el("a", {href: c.url, text: c.name})])));
        } else if (data && data.error) {
          serverError = data.error;
          showError(data.error);
          countNode.textContent = "—";
          countNode.setAttribute("data-count", "");
          statusNode.textContent = L.invalid;
          textNode.textContent = "";
          sampleNode.replaceChildren();
        } else throw new Error(String(status));
      })
      .catch(() => {
        if (mine !== sequence) return;
        countNode.textContent = "—";
        statusNode.textContent = L.failed;
      });
  }

  hidden.value = JSON.stringify(rule);
  render();
  preview();
})();

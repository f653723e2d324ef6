// Renders the OpenAPI document of this server (openapi.json, same origin) as a
// readable reference. Nothing is loaded from anywhere else, and every text of
// the document goes into the page as text, never as markup.
(function () {
  'use strict';
  const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  let doc = null;

  function el(tag, cls, children) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const c of [].concat(children || [])) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  // Inline `code` spans of a line of text.
  function inline(text) {
    const out = [];
    String(text).split('`').forEach(function (part, i) {
      if (part) out.push(i % 2 ? el('code', null, part) : document.createTextNode(part));
    });
    return out;
  }

  // A little CommonMark: paragraphs, "- " lists and `code`.
  function prose(text) {
    const box = el('div', 'prose');
    if (!text) return box;
    for (const block of String(text).split(/\n\s*\n/)) {
      const lines = block.split('\n');
      if (lines.every(function (l) { return /^\s*- /.test(l) || /^\s{2,}\S/.test(l); }) && /^\s*- /.test(lines[0])) {
        const ul = el('ul');
        let li = null;
        for (const l of lines) {
          if (/^\s*- /.test(l)) { li = el('li', null, inline(l.replace(/^\s*- /, ''))); ul.appendChild(li); }
          else if (li) { inline(' ' + l.trim()).forEach(function (n) { li.appendChild(n); }); }
        }
        box.appendChild(ul);
      } else {
        box.appendChild(el('p', null, inline(lines.join(' '))));
      }
    }
    return box;
  }

  // The object a local $ref points at.
  function deref(ref) {
    if (typeof ref !== 'string' || ref.charAt(0) !== '#') return null;
    let v = doc;
    for (const raw of ref.slice(2).split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (v === null || typeof v !== 'object' || !(key in v)) return null;
      v = v[key];
    }
    return v;
  }

  function resolve(v) {
    let guard = 0;
    while (v && v.$ref && guard++ < 16) v = deref(v.$ref) || {};
    return v || {};
  }

  // `oneOf: [null, X]`, the 3.1 way to write "X or null": X, or null if `s` is not that.
  function orNull(s) {
    if (!s || !s.oneOf || s.oneOf.length !== 2) return null;
    const rest = s.oneOf.filter(function (p) { return p.type !== 'null'; });
    return rest.length === 1 ? rest[0] : null;
  }

  // allOf parts merged into one schema (properties merged, later constraints win);
  // "X or null" is X marked nullable.
  function flatten(s) {
    s = resolve(s);
    const inner = orNull(s);
    if (inner) return Object.assign({}, flatten(inner), { nullable: true }, s.description ? { description: s.description } : {});
    if (!s.allOf) return s;
    const out = Object.assign({}, s);
    delete out.allOf;
    for (const part of s.allOf.map(flatten)) {
      for (const k of Object.keys(part)) {
        if (k === 'properties') {
          out.properties = Object.assign({}, out.properties);
          for (const p of Object.keys(part.properties)) {
            out.properties[p] = Object.assign({}, flatten(out.properties[p] || {}), flatten(part.properties[p]));
          }
        } else if (k === 'required') {
          out.required = Array.from(new Set((out.required || []).concat(part.required)));
        } else if (!(k in out) || k === 'type') {
          out[k] = part[k];
        }
      }
    }
    return out;
  }

  // The name of a schema that is a $ref (or a nullable wrapper of one).
  function refName(s) {
    if (!s) return null;
    if (s.$ref) return s.$ref.split('/').pop();
    if (orNull(s)) return refName(orNull(s));
    if (s.allOf && s.allOf.length === 1 && s.allOf[0].$ref) return s.allOf[0].$ref.split('/').pop();
    return null;
  }

  function typeOf(s) {
    if (s.type === 'array') return 'array of ' + (refName(s.items) || typeOf(flatten(s.items || {})));
    let t = Array.isArray(s.type) ? s.type.join(' | ') : s.type || (s.properties ? 'object' : s.oneOf ? 'one of' : s.anyOf ? 'any of' : 'any');
    if (s.format) t += ' (' + s.format + ')';
    if (s.nullable) t += ' | null';
    return t;
  }

  function constraints(s) {
    const c = [];
    if (s.enum) c.push('one of: ' + s.enum.map(function (v) { return JSON.stringify(v); }).join(', '));
    if (s.pattern) c.push('pattern ' + s.pattern);
    if (s.minimum !== undefined) c.push('≥ ' + s.minimum);
    if (s.maximum !== undefined) c.push('≤ ' + s.maximum);
    if (s.minLength !== undefined) c.push('length ≥ ' + s.minLength);
    if (s.maxLength !== undefined) c.push('length ≤ ' + s.maxLength);
    if (s.minItems !== undefined) c.push('items ≥ ' + s.minItems);
    if (s.maxItems !== undefined) c.push('items ≤ ' + s.maxItems);
    if (s.default !== undefined) c.push('default ' + JSON.stringify(s.default));
    if (s.additionalProperties === false) c.push('no other fields');
    return c.length ? el('span', 'constraint', ' — ' + c.join('; ')) : null;
  }

  // A schema as a nested list; a named schema is expanded once per branch.
  // `bare`: without its own type line (a property's line already says it).
  function schemaView(raw, seen, depth, bare) {
    seen = seen || [];
    depth = depth || 0;
    const name = refName(raw);
    const s = flatten(raw);
    const box = el('div', 'schema');
    if (!bare) {
      box.appendChild(el('div', null, [
        el('span', 'type', name ? name + ': ' + typeOf(s) : typeOf(s)), constraints(s),
        s.description ? el('span', 'desc', [' — '].concat(inline(s.description))) : null,
      ]));
    }
    if (depth > 8 || (name && seen.indexOf(name) >= 0)) return box;
    const next = name ? seen.concat([name]) : seen;
    if (s.properties) {
      const ul = el('ul');
      const req = s.required || [];
      for (const p of Object.keys(s.properties)) {
        const ps = s.properties[p];
        const pname = refName(ps);
        const flat = flatten(ps);
        const li = el('li', null, [
          el('span', 'prop', p), req.indexOf(p) >= 0 ? el('span', 'req', '*') : null, ' ',
          el('span', 'type', pname ? pname + ': ' + typeOf(flat) : typeOf(flat)), constraints(flat),
          flat.description ? el('span', 'desc', [' — '].concat(inline(flat.description))) : null,
        ]);
        const inner = flat.type === 'array' ? flatten(flat.items || {}) : flat;
        const innerName = flat.type === 'array' ? refName(flat.items) : pname;
        if ((inner.properties || inner.oneOf || inner.anyOf) && !(innerName && next.indexOf(innerName) >= 0)) {
          li.appendChild(schemaView(flat.type === 'array' ? flat.items : ps, next, depth + 1, flat.type !== 'array'));
        }
        ul.appendChild(li);
      }
      box.appendChild(ul);
    }
    if (s.type === 'array' && s.items) box.appendChild(schemaView(s.items, next, depth + 1));
    for (const k of ['oneOf', 'anyOf']) {
      if (s[k]) {
        const ul = el('ul');
        s[k].forEach(function (alt) { ul.appendChild(el('li', null, [schemaView(alt, next, depth + 1)])); });
        box.appendChild(ul);
      }
    }
    return box;
  }

  function contentView(content) {
    const box = el('div');
    for (const media of Object.keys(content || {})) {
      box.appendChild(el('div', 'media', [el('code', null, media)]));
      const schema = content[media].schema;
      if (schema) box.appendChild(schemaView(schema));
    }
    return box;
  }

  function securityText(op) {
    const sec = op.security !== undefined ? op.security : (doc.security || []);
    if (!sec.length) return 'none (public)';
    const alts = sec.map(function (req) {
      const names = Object.keys(req);
      return names.length ? names.join(' + ') : 'none';
    });
    return alts.join(' or ');
  }

  function paramsView(params) {
    const table = el('table', null, [el('tr', null, ['Name', 'In', 'Schema', 'Description'].map(function (h) { return el('th', null, h); }))]);
    for (const raw of params) {
      const p = resolve(raw);
      const s = flatten(p.schema || {});
      table.appendChild(el('tr', null, [
        el('td', null, [el('span', 'prop', p.name), p.required ? el('span', 'req', '*') : null]),
        el('td', null, p.in),
        el('td', null, [el('span', 'type', typeOf(s)), constraints(s.type === 'array' ? Object.assign({}, s, flatten(s.items || {})) : s)]),
        el('td', null, inline(p.description || '')),
      ]));
    }
    return table;
  }

  function responsesView(responses) {
    const table = el('table', null, [el('tr', null, ['Status', 'Description', 'Headers and body'].map(function (h) { return el('th', null, h); }))]);
    for (const status of Object.keys(responses).sort()) {
      const r = resolve(responses[status]);
      const headers = el('div');
      for (const h of Object.keys(r.headers || {})) {
        const hv = resolve(r.headers[h]);
        headers.appendChild(el('div', null, [
          el('code', null, h), hv.required ? el('span', 'req', '*') : null, ' ',
          el('span', 'type', typeOf(flatten(hv.schema || {}))), hv.description ? el('span', 'desc', [' — '].concat(inline(hv.description))) : null,
        ]));
      }
      table.appendChild(el('tr', null, [
        el('td', null, [el('span', 'status s' + status.charAt(0), status)]),
        el('td', null, [prose(r.description)]),
        el('td', null, [headers, contentView(r.content)]),
      ]));
    }
    return table;
  }

  function opView(path, method, op) {
    const roles = op['x-alpes-roles'];
    const pending = op['x-alpes-pending'];
    const sec = securityText(op);
    const summary = el('summary', null, [
      el('span', 'method ' + method, method.toUpperCase()),
      el('span', 'path', path),
      el('span', 'summary', op.summary || ''),
      roles ? el('span', 'badge', roles.join(' | ')) : null,
      sec === 'none (public)' ? el('span', 'badge public', 'public') : null,
      pending ? el('span', 'badge pending', 'not yet served') : null,
    ]);
    const body = el('div', 'body', [prose(op.description)]);
    body.appendChild(el('p', null, [el('strong', null, 'Credentials: '), sec, roles ? '; roles: ' + roles.join(', ') : '']));
    if (op.parameters && op.parameters.length) {
      body.appendChild(el('h4', null, 'Parameters'));
      body.appendChild(paramsView(op.parameters));
    }
    if (op.requestBody) {
      const rb = resolve(op.requestBody);
      body.appendChild(el('h4', null, 'Request body' + (rb.required ? '' : ' (optional)')));
      if (rb.description) body.appendChild(prose(rb.description));
      body.appendChild(contentView(rb.content));
    }
    body.appendChild(el('h4', null, 'Responses'));
    body.appendChild(responsesView(op.responses || {}));
    const d = el('details', 'op', [summary, body]);
    d.id = 'op-' + (op.operationId || method + path);
    d.dataset.search = [method, path, op.summary, op.description, op.operationId, (op.tags || []).join(' '), (roles || []).join(' ')].join(' ').toLowerCase();
    return d;
  }

  function render() {
    const info = doc.info || {};
    document.title = (info.title || 'API') + ' — API reference';
    document.getElementById('title').textContent = info.title || 'API reference';
    document.getElementById('version').textContent = 'version ' + (info.version || '?') + ' · OpenAPI ' + (doc.openapi || '?');
    document.getElementById('description').replaceWith(prose(info.description));
    const main = document.getElementById('main');
    main.textContent = '';
    const byTag = new Map();
    for (const t of doc.tags || []) byTag.set(t.name, []);
    for (const path of Object.keys(doc.paths || {})) {
      const item = doc.paths[path];
      for (const method of METHODS) {
        if (!item[method]) continue;
        const tag = (item[method].tags || ['other'])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(opView(path, method, item[method]));
      }
    }
    const toc = document.getElementById('toc');
    for (const [tag, ops] of byTag) {
      if (!ops.length) continue;
      const section = el('section', 'tag', [el('h2', null, tag + ' (' + ops.length + ')')].concat(ops));
      section.id = 'tag-' + tag;
      main.appendChild(section);
      const a = el('a', null, tag);
      a.href = '#tag-' + tag;
      toc.appendChild(a);
    }
    const schemes = (doc.components || {}).securitySchemes || {};
    if (Object.keys(schemes).length) {
      const section = el('section', null, [el('h2', null, 'Credentials')]);
      for (const name of Object.keys(schemes)) {
        const s = schemes[name];
        const how = s.type === 'http' ? 'HTTP ' + s.scheme + (s.bearerFormat ? ' (' + s.bearerFormat + ')' : '') : s.type + ' in ' + s.in + ' ' + s.name;
        section.appendChild(el('h3', null, [el('code', null, name), ' — ' + how]));
        section.appendChild(prose(s.description));
      }
      main.appendChild(section);
    }
    const schemas = (doc.components || {}).schemas || {};
    const section = el('section', null, [el('h2', null, 'Schemas')]);
    for (const name of Object.keys(schemas).sort()) {
      const d = el('details', 'op', [el('summary', null, [el('span', 'path', name)]), el('div', 'body', [schemaView({ $ref: '#/components/schemas/' + name })])]);
      d.id = 'schema-' + name;
      d.dataset.search = ('schema ' + name).toLowerCase();
      section.appendChild(d);
    }
    main.appendChild(section);
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === 'DETAILS') { target.open = true; target.scrollIntoView(); }
  }

  function applyFilter() {
    const words = document.getElementById('filter').value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const section of document.querySelectorAll('#main section')) {
      let shown = 0;
      for (const d of section.querySelectorAll('details.op')) {
        const hit = words.every(function (w) { return d.dataset.search.indexOf(w) >= 0; });
        d.hidden = !hit;
        if (hit) shown++;
      }
      section.hidden = shown === 0 && section.querySelectorAll('details.op').length > 0;
    }
  }

  document.getElementById('filter').addEventListener('input', applyFilter);
  fetch('openapi.json', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
    .then(function (r) {
      if (!r.ok) throw new Error('openapi.json answered ' + r.status);
      return r.json();
    })
    .then(function (d) { doc = d; render(); applyFilter(); })
    .catch(function (e) {
      const s = document.getElementById('status');
      s.className = 'error';
      s.textContent = 'Cannot load openapi.json: ' + e.message;
    });
})();

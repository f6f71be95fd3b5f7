/* maillage dashboard: the core shared by every page.
 *
 * - MG.el() builds DOM nodes with createElement/textContent only: every
 *   string from the store (replicated from other nodes, so untrusted) is
 *   inserted as text, never parsed as HTML.
 * - MG.api() talks to the node's JSON API (docs/api.md): it sends the
 *   access token (from the #jeton= fragment) and, on writes, the CSRF
 *   token of GET /api/session.
 * - A hash router shows one page at a time (#/offre, #/territoire, ...).
 * - Live updates: GET /api/changes every 2 s; when the store's change
 *   counter grows, the current page reloads its data (not its forms).
 */
'use strict';

const MG = (function () {
    const state = {
        token: null,        // access token for non-loopback binds
        csrf: null,         // CSRF token from GET /api/session
        standard: null,     // GET /api/standard, loaded once
        status: null,       // last GET /api/status
        lastSeq: null,      // store change counter last seen
        page: null,         // current page object
        pageName: null,
        pollTimer: null,
        pollFailures: 0,
    };
    const pages = {};
    /* Tags created in the SVG namespace (the territory map); el() makes
       them SVG only inside an SVG parent (see svg()). */
    const SVG_TAGS = new Set(['svg', 'g', 'circle', 'path', 'rect', 'title', 'desc', 'text',
                              'line', 'polygon']);

    /* ---------------------------------------------------------------- */
    /* DOM helpers                                                        */

    /* el('p', {class: 'x'}, 'text', child, ...): attributes are set with
       setAttribute (never on*), children are nodes or strings (text). */
    function el(tag, attrs, ...children) {
        return build(document.createElement(tag), attrs, children);
    }

    /* Like el(), in the SVG namespace. */
    function svg(tag, attrs, ...children) {
        if (!SVG_TAGS.has(tag))
            throw new Error('SVG tag ' + tag);
        return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs,
                     children);
    }

    function build(node, attrs, children) {
        append(node, children);   /* first, so that a <select>'s value can pick an option */
        if (attrs) {
            for (const [k, v] of Object.entries(attrs)) {
                if (v === null || v === undefined || v === false)
                    continue;
                if (k.startsWith('on'))
                    node.addEventListener(k.slice(2), v);
                else if (k === 'checked' || k === 'value' || k === 'selected' ||
                         k === 'disabled')
                    node[k] = v;
                else
                    node.setAttribute(k, v === true ? '' : String(v));
            }
        }
        return node;
    }

    function append(node, children) {
        for (const c of children) {
            if (c === null || c === undefined || c === false)
                continue;
            if (Array.isArray(c))
                append(node, c);
            else if (c instanceof Node)
                node.appendChild(c);
            else
                node.appendChild(document.createTextNode(String(c)));
        }
    }

    function clear(node) {
        while (node.firstChild)
            node.removeChild(node.firstChild);
        return node;
    }

    let idCounter = 0;
    function uid(prefix) {
        idCounter += 1;
        return (prefix || 'c') + '-' + idCounter;
    }

    /* Tells screen-reader users what changed (role=status region). */
    function announce(text) {
        const region = document.getElementById('annonces');
        region.textContent = '';
        window.setTimeout(() => { region.textContent = text; }, 50);
    }

    /* A message box under a form: kind 'erreur' or 'ok'. */
    function message(box, kind, text) {
        clear(box);
        box.className = 'message ' + kind;
        if (text)
            box.appendChild(document.createTextNode(text));
        box.hidden = !text;
    }

    /* Text with the search engine's <mark>…</mark> highlights: the snippet
       comes from the store (other nodes' text), so it is split on the two
       literal markers and every piece is inserted as text. */
    function markedText(snippet) {
        const frag = document.createDocumentFragment();
        const parts = String(snippet).split(/(<mark>|<\/mark>)/);
        let inMark = false;
        for (const p of parts) {
            if (p === '<mark>') { inMark = true; continue; }
            if (p === '</mark>') { inMark = false; continue; }
            if (!p)
                continue;
            frag.appendChild(inMark ? el('mark', null, p) : document.createTextNode(p));
        }
        return frag;
    }

    /* ---------------------------------------------------------------- */
    /* API                                                                */

    class ApiError extends Error {
        constructor(status, text) {
            super(text);
            this.status = status;
        }
    }

    function headers(write) {
        const h = {'Accept': 'application/json'};
        if (state.token)
            h['Authorization'] = 'Bearer ' + state.token;
        if (write) {
            h['Content-Type'] = 'application/json';
            if (state.csrf)
                h['X-CSRF-Token'] = state.csrf;
        }
        return h;
    }

    async function api(method, path, body) {
        const write = method !== 'GET';
        const init = {method, headers: headers(write), credentials: 'same-origin',
                      cache: 'no-store'};
        if (body !== undefined)
            init.body = JSON.stringify(body);
        let resp;
        try {
            resp = await fetch(path, init);
        } catch (e) {
            throw new ApiError(0, 'Le nœud ne répond pas. Vérifiez que « maillage node » ' +
                               'tourne toujours, puis rechargez la page.');
        }
        let data = null;
        const type = resp.headers.get('Content-Type') || '';
        if (type.includes('application/json')) {
            try { data = await resp.json(); } catch (e) { data = null; }
        }
        if (!resp.ok) {
            let text = data && data.error ? data.error : null;
            if (!text) {
                if (resp.status === 401 || resp.status === 403)
                    text = 'Accès refusé : ouvrez le tableau de bord avec l\'adresse ' +
                           'complète affichée par « maillage node » (avec #jeton=…).';
                else
                    text = 'Le nœud a répondu par une erreur (' + resp.status + ').';
            }
            throw new ApiError(resp.status, text);
        }
        return data;
    }

    /* Downloads an API file (CSV, GeoJSON, iCalendar) with the access
       token: plain links cannot carry the Authorization header. */
    async function download(path, fallbackName) {
        const resp = await fetch(path, {headers: headers(false), cache: 'no-store'});
        if (!resp.ok) {
            let text = 'Le téléchargement a échoué (' + resp.status + ').';
            try { const d = await resp.json(); if (d.error) text = d.error; } catch (e) { /* not JSON */ }
            throw new ApiError(resp.status, text);
        }
        const blob = await resp.blob();
        let name = fallbackName;
        const cd = resp.headers.get('Content-Disposition') || '';
        const m = /filename="?([^";]+)"?/.exec(cd);
        if (m)
            name = m[1];
        const url = URL.createObjectURL(blob);
        const a = el('a', {href: url, download: name, class: 'invisible'});
        document.body.appendChild(a);
        a.click();
        a.remove();
        window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    }

    /* A button that downloads `path`, with its error shown next to it. */
    function downloadButton(label, path, name) {
        const err = el('span', {class: 'message erreur', hidden: true, role: 'alert'});
        const b = el('button', {type: 'button', class: 'secondaire', onclick: async () => {
            message(err, 'erreur', '');
            try {
                await download(path, name);
            } catch (e) {
                message(err, 'erreur', e.message);
            }
        }}, label);
        return el('span', {class: 'telechargement'}, b, err);
    }

    /* ---------------------------------------------------------------- */
    /* Standard (enumerations, fields, the eight questions)              */

    async function standard() {
        if (!state.standard)
            state.standard = await api('GET', '/api/standard');
        return state.standard;
    }

    /* The allowed values of an enumerated field, as [{value, label}]. */
    function enumValues(std, name) {
        const field = fieldOf(std, name);
        let vals = field && (field.values || field.enum);
        if (!vals && std.enumerations)
            vals = std.enumerations[name];
        if (!vals)
            return [];
        return vals.map((v) => typeof v === 'string' ? {value: v, label: v}
                        : {value: v.value, label: v.label || v.value});
    }

    function fieldOf(std, name) {
        const list = std.offer_fields || std.fields || [];
        return list.find((f) => f.name === name) || null;
    }

    /* A <select> of one enumeration, with an empty first choice. */
    function enumSelect(std, name, id, emptyLabel) {
        const s = el('select', {id, name});
        s.appendChild(el('option', {value: ''}, emptyLabel || 'Tous'));
        for (const v of enumValues(std, name))
            s.appendChild(el('option', {value: v.value}, v.label));
        return s;
    }

    /* ---------------------------------------------------------------- */
    /* Formatting                                                         */

    function list(v) {
        if (v === null || v === undefined)
            return [];
        return Array.isArray(v) ? v : [v];
    }

    function joined(v) {
        return list(v).join(', ');
    }

    function plural(n, one, many) {
        return n + ' ' + (Math.abs(n) < 2 ? one : many);   // French: 0 and 1 take the singular
    }

    function shortId(id) {
        return String(id || '').slice(0, 8);
    }

    /* A table: columns [{label, get(row) -> string|Node}], caption text. */
    function table(caption, columns, rows) {
        const t = el('table');
        if (caption)
            t.appendChild(el('caption', null, caption));
        const head = el('tr');
        for (const c of columns)
            head.appendChild(el('th', {scope: 'col'}, c.label));
        t.appendChild(el('thead', null, head));
        const body = el('tbody');
        for (const r of rows) {
            const tr = el('tr');
            columns.forEach((c, i) => {
                const v = c.get(r);
                tr.appendChild(i === 0 ? el('th', {scope: 'row'}, v) : el('td', null, v));
            });
            body.appendChild(tr);
        }
        t.appendChild(body);
        return el('div', {class: 'defile', tabindex: 0, role: 'region',
                          'aria-label': caption || 'Tableau'}, t);
    }

    /* ---------------------------------------------------------------- */
    /* Router and live updates                                            */

    function register(name, page) {
        pages[name] = page;
    }

    function currentName() {
        const m = /^#\/([a-z]+)/.exec(location.hash);
        return m && pages[m[1]] ? m[1] : 'offre';
    }

    async function show(name) {
        const page = pages[name];
        const main = document.getElementById('contenu');
        if (state.page && state.page.leave)
            state.page.leave();
        clear(main);
        state.page = page;
        state.pageName = name;
        for (const a of document.querySelectorAll('#navigation a')) {
            if (a.dataset.page === name)
                a.setAttribute('aria-current', 'page');
            else
                a.removeAttribute('aria-current');
        }
        document.title = page.title + ' — maillage';
        main.appendChild(el('h1', {id: 'titre-page'}, page.title));
        try {
            await page.render(main);
        } catch (e) {
            main.appendChild(el('p', {class: 'message erreur', role: 'alert'}, e.message));
        }
    }

    async function refreshStatus() {
        try {
            const s = await api('GET', '/api/status');
            state.status = s;
            const name = (s.profile && s.profile.nom) || s.name || s.nom || 'Tableau de bord';
            document.getElementById('nom-noeud').textContent = name;
            const box = document.getElementById('etat-synchro');
            const peers = s.peers || s.pairs || [];
            const live = peers.filter((p) => p.state === 'connected' || p.state === 'live' ||
                                      p.etat === 'connecté').length;
            box.textContent = peers.length
                ? plural(live, 'pair relié', 'pairs reliés') + ' sur ' + peers.length
                : 'aucun pair';
        } catch (e) {
            /* The header is informative only; the poller reports outages. */
        }
    }

    async function poll() {
        try {
            const since = state.lastSeq === null ? 0 : state.lastSeq;
            const r = await api('GET', '/api/changes?since=' + since);
            state.pollFailures = 0;
            document.getElementById('pied-maj').textContent = '';
            if (state.lastSeq !== null && r.last_seq > state.lastSeq && typing()) {
                /* The user is typing in a part the refresh would rebuild:
                   keep the counter unseen and look again in 2 s. */
            } else if (state.lastSeq !== null && r.last_seq > state.lastSeq) {
                state.lastSeq = r.last_seq;
                await refreshStatus();
                if (state.page && state.page.refresh) {
                    await state.page.refresh();
                    announce('Nouvelles informations reçues : la page est à jour.');
                }
            } else {
                state.lastSeq = r.last_seq;
            }
        } catch (e) {
            state.pollFailures += 1;
            if (state.pollFailures >= 2)
                document.getElementById('pied-maj').textContent =
                    'Le nœud ne répond plus : les informations affichées peuvent être anciennes.';
        }
        state.pollTimer = window.setTimeout(poll, 2000);
    }

    /* True when the focus is in a form field of a region that a refresh
       rebuilds (marked data-rafraichi), e.g. an invitation's answer. */
    function typing() {
        const a = document.activeElement;
        return !!(a && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) &&
                  a.closest('[data-rafraichi]'));
    }

    /* After a write of our own: take the new counter without reloading
       the page a second time. */
    async function wrote() {
        try {
            const r = await api('GET', '/api/changes?since=' + (state.lastSeq || 0));
            state.lastSeq = r.last_seq;
        } catch (e) { /* the poller will catch up */ }
    }

    function readToken() {
        const m = /^#jeton=([A-Za-z0-9_-]+)/.exec(location.hash);
        if (m) {
            sessionStorage.setItem('maillage-jeton', m[1]);
            history.replaceState(null, '', location.pathname + location.search + '#/offre');
        }
        state.token = sessionStorage.getItem('maillage-jeton');
    }

    async function start() {
        readToken();
        /* The skip link focuses the content without touching the hash,
           which holds the current page. */
        document.querySelector('.skip').addEventListener('click', (ev) => {
            ev.preventDefault();
            document.getElementById('contenu').focus();
        });
        window.addEventListener('hashchange', () => {
            if (/^#jeton=/.test(location.hash)) {
                /* A new access link pasted into this tab: start again with it. */
                readToken();
                location.reload();
                return;
            }
            if (state.csrf)
                show(currentName());
        });
        const main = document.getElementById('contenu');
        try {
            const s = await api('GET', '/api/session');
            state.csrf = s.csrf;
        } catch (e) {
            clear(main);
            main.appendChild(el('h1', null, 'Tableau de bord indisponible'));
            main.appendChild(el('p', {class: 'message erreur', role: 'alert'}, e.message));
            return;
        }
        await refreshStatus();
        await show(currentName());
        poll();
    }

    document.addEventListener('DOMContentLoaded', start);

    return {el, svg, clear, uid, announce, message, markedText, api, ApiError, download,
            downloadButton, standard, enumValues, fieldOf, enumSelect, list, joined,
            plural, shortId, table, register, wrote, state,
            refreshStatus, focusTitle: () => {
                const h = document.getElementById('titre-page');
                if (h) { h.setAttribute('tabindex', '-1'); h.focus(); }
            }};
})();

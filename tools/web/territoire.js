/* Page « Le territoire »: every offer the node knows, with filters
 * (service, public, modality, commune) and a map drawn as SVG from the
 * offers' coordinates and the communes table (GET /api/communes): no
 * tiles, nothing fetched from outside. */
'use strict';

(function () {
    const {el, svg, clear, message, api} = MG;
    const PAGE = 50;
    const MAP_MAX = 1000;     // the API's largest page
    const WIDTH = 640;

    /* Equirectangular projection around the mean latitude: over a
       département the distortion is far below a marker's size. */
    function projector(points) {
        let minLat = Infinity, maxLat = -Infinity, minLng = Infinity, maxLng = -Infinity;
        for (const p of points) {
            minLat = Math.min(minLat, p.lat); maxLat = Math.max(maxLat, p.lat);
            minLng = Math.min(minLng, p.lng); maxLng = Math.max(maxLng, p.lng);
        }
        if (!Number.isFinite(minLat))
            return null;
        const k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
        const spanX = Math.max((maxLng - minLng) * k, 0.01);
        const spanY = Math.max(maxLat - minLat, 0.01);
        const margin = 12;
        const scale = (WIDTH - 2 * margin) / spanX;
        const height = Math.round(spanY * scale + 2 * margin);
        return {height, xy: (lat, lng) => [margin + (lng - minLng) * k * scale,
                                          margin + (maxLat - lat) * scale]};
    }

    function coords(o) {
        const f = o.fields || {};
        const lat = Number(f.latitude), lng = Number(f.longitude);
        return Number.isFinite(lat) && Number.isFinite(lng) && (f.latitude !== undefined)
            ? {lat, lng} : null;
    }

    function offerLabel(o) {
        const f = o.fields || {};
        return (f.nom || 'Offre ' + MG.shortId(o.id)) + (f.commune ? ', ' + f.commune : '') +
            (f.services ? ' : ' + MG.joined(f.services) : '');
    }

    function offerDetail(o) {
        const f = o.fields || {};
        const rows = [['Structure', o.author_name || f.nom], ['Adresse', [f.adresse, f.code_postal,
                      f.commune].filter(Boolean).join(' ')], ['Services', MG.joined(f.services)],
                      ['Publics', MG.joined(f.publics_specifiquement_adresses) || 'tout public'],
                      ['Accompagnement', MG.joined(f.modalites_accompagnement)],
                      ['Frais', MG.joined(f.frais_a_charge)], ['Durée', f.duree],
                      ['Fréquence', f.frequence], ['Horaires', f.horaires],
                      ['Démarche', f.demarche], ['Téléphone', f.telephone],
                      ['Courriel', MG.joined(f.courriels)], ['Présentation', f.presentation_resume]];
        const dl = el('dl', {class: 'resume'});
        for (const [k, v] of rows)
            if (v)
                dl.append(el('dt', null, k), el('dd', null, v));
        return dl;
    }

    async function render(main) {
        const std = await MG.standard();
        let communes = [];
        try {
            const c = await api('GET', '/api/communes');
            communes = (c && (c.communes || c)) || [];
            if (!Array.isArray(communes))
                communes = [];
        } catch (e) {
            communes = [];
        }

        /* --- filters ------------------------------------------------- */
        const ids = {service: 'filtre-service', public: 'filtre-public',
                     modalite: 'filtre-modalite', commune: 'filtre-commune', q: 'filtre-mots'};
        const fService = MG.enumSelect(std, 'services', ids.service, 'Tous les services');
        const fPublic = MG.enumSelect(std, 'publics_specifiquement_adresses', ids.public,
                                      'Tous les publics');
        const fModalite = MG.enumSelect(std, 'modalites_accompagnement', ids.modalite,
                                        'Toutes les modalités');
        const listId = MG.uid('communes');
        const fCommune = el('input', {type: 'text', id: ids.commune, list: listId,
                                      autocomplete: 'off'});
        const dataList = el('datalist', {id: listId},
                            communes.map((c) => el('option', {value: c.name || c.nom})));
        const fQ = el('input', {type: 'search', id: ids.q});
        const form = el('form', {class: 'filtres', role: 'search',
                                 'aria-label': 'Filtrer les offres'},
            el('div', {class: 'champ'}, el('label', {for: ids.service}, 'Service'), fService),
            el('div', {class: 'champ'}, el('label', {for: ids.public}, 'Public'), fPublic),
            el('div', {class: 'champ'}, el('label', {for: ids.modalite}, 'Modalité'), fModalite),
            el('div', {class: 'champ'}, el('label', {for: ids.commune}, 'Commune'), fCommune,
               dataList),
            el('div', {class: 'champ'}, el('label', {for: ids.q}, 'Mots'), fQ),
            el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Filtrer'),
               el('button', {type: 'reset', class: 'secondaire'}, 'Tout afficher')));
        const summary = el('p', {id: 'resultat-territoire', 'aria-live': 'polite'});
        const msg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const mapBox = el('figure', {class: 'carte-territoire'});
        const detail = el('div', {class: 'detail-offre', id: 'detail-offre', 'aria-live': 'polite'});
        const listBox = el('div', {id: 'liste-territoire'});
        const more = el('button', {type: 'button', class: 'secondaire', hidden: true},
                        'Afficher les offres suivantes');
        main.append(form, msg, summary,
                    el('section', {'aria-labelledby': 'titre-carte', class: 'section-carte'},
                       el('h2', {id: 'titre-carte'}, 'Carte'),
                       el('button', {type: 'button', class: 'secondaire passer', onclick: () => {
                           const h = document.getElementById('titre-liste');
                           h.setAttribute('tabindex', '-1');
                           h.focus();
                       }}, 'Passer la carte : aller à la liste des offres'),
                       mapBox, detail),
                    el('section', {'aria-labelledby': 'titre-liste'},
                       el('h2', {id: 'titre-liste'}, 'Offres'), listBox, more));

        let shown = [];
        let total = 0;

        /* The map shows every matching offer (the API's largest page);
           the list below pages through them. */
        let onMap = [];

        function query(offset, limit) {
            const p = new URLSearchParams();
            if (fService.value) p.set('service', fService.value);
            if (fPublic.value) p.set('public', fPublic.value);
            if (fModalite.value) p.set('modalite', fModalite.value);
            if (fCommune.value.trim()) p.set('commune', fCommune.value.trim());
            if (fQ.value.trim()) p.set('q', fQ.value.trim());
            p.set('limit', String(limit || PAGE));
            p.set('offset', String(offset));
            return '/api/offers?' + p.toString();
        }

        function drawMap() {
            clear(mapBox);
            const pts = communes.filter((c) => Number.isFinite(c.lat) && Number.isFinite(c.lng))
                .map((c) => ({lat: c.lat, lng: c.lng}));
            const located = onMap.map((o) => ({o, p: coords(o)})).filter((x) => x.p);
            const proj = projector(pts.length ? pts : located.map((x) => x.p));
            if (!proj) {
                mapBox.appendChild(el('p', null, 'Pas de carte : aucune offre affichée n\'a de ' +
                                      'coordonnées et le nœud n\'a pas de table des communes ' +
                                      '(option --communes de « maillage node »).'));
                return;
            }
            const s = svg('svg', {viewBox: '0 0 ' + WIDTH + ' ' + proj.height, role: 'group',
                                  'aria-labelledby': 'legende-carte', class: 'carte'});
            const bg = svg('g', {class: 'communes', 'aria-hidden': 'true'});
            const maxPop = communes.reduce((m, c) => Math.max(m, c.population || 0), 1);
            for (const c of communes) {
                if (!Number.isFinite(c.lat) || !Number.isFinite(c.lng))
                    continue;
                const [x, y] = proj.xy(c.lat, c.lng);
                const r = 1.5 + 7 * Math.sqrt((c.population || 0) / maxPop);
                bg.appendChild(svg('circle', {cx: x.toFixed(1), cy: y.toFixed(1),
                                              r: r.toFixed(1)}));
            }
            s.appendChild(bg);
            const fg = svg('g', {class: 'offres'});
            for (const {o, p} of located) {
                const [x, y] = proj.xy(p.lat, p.lng);
                const label = offerLabel(o);
                const mk = svg('g', {class: 'marqueur' + (o.mine ? ' mien' : ''), tabindex: 0,
                                     role: 'button', 'aria-label': label,
                                     transform: 'translate(' + x.toFixed(1) + ' ' +
                                                y.toFixed(1) + ')'},
                               svg('title', null, label),
                               svg('circle', {r: 6}));
                const open = () => {
                    clear(detail);
                    detail.append(el('h3', null, label), offerDetail(o));
                };
                mk.addEventListener('click', open);
                mk.addEventListener('keydown', (ev) => {
                    if (ev.key === 'Enter' || ev.key === ' ') {
                        ev.preventDefault();
                        open();
                    }
                });
                fg.appendChild(mk);
            }
            s.appendChild(fg);
            mapBox.append(s, el('figcaption', {id: 'legende-carte'},
                'Carte des ' + MG.plural(located.length, 'offre', 'offres') +
                (onMap.length < total ? ' (les ' + onMap.length + ' premières)' : '') +
                ' (points colorés ; les vôtres en vert)' +
                (communes.length ? ' et des ' + communes.length + ' communes du territoire ' +
                 '(points gris, plus gros quand la commune est plus peuplée)' : '') +
                '. Choisissez un point pour voir l\'offre.'));
        }

        function drawList() {
            clear(listBox);
            if (!shown.length) {
                listBox.appendChild(el('p', null, 'Aucune offre ne correspond à ces filtres.'));
                return;
            }
            listBox.appendChild(MG.table('Offres du territoire', [
                {label: 'Lieu', get: (o) => {
                    const f = o.fields || {};
                    return el('span', null, f.nom || o.author_name || MG.shortId(o.id),
                              o.mine ? el('span', {class: 'meta'}, ' (votre offre)') : null);
                }},
                {label: 'Commune', get: (o) => [o.fields.code_postal, o.fields.commune]
                    .filter(Boolean).join(' ') || '—'},
                {label: 'Services', get: (o) => MG.joined(o.fields.services) || '—'},
                {label: 'Publics', get: (o) => MG.joined(o.fields.publics_specifiquement_adresses)
                    || 'tout public'},
                {label: 'Accompagnement', get: (o) => MG.joined(o.fields.modalites_accompagnement)
                    || '—'},
            ], shown));
        }

        async function load(append) {
            try {
                const [r, m] = await Promise.all([
                    api('GET', query(append ? shown.length : 0)),
                    append ? null : api('GET', query(0, MAP_MAX))]);
                shown = append ? shown.concat(r.offers || []) : (r.offers || []);
                if (m)
                    onMap = m.offers || [];
                total = r.total || shown.length;
                message(msg, 'erreur', '');
            } catch (e) {
                message(msg, 'erreur', e.message);
                return;
            }
            summary.textContent = MG.plural(total, 'offre', 'offres') +
                (shown.length < total ? ', ' + shown.length + ' affichées' : '') + '.';
            more.hidden = shown.length >= total;
            if (!append)
                drawMap();
            drawList();
        }

        form.addEventListener('submit', (ev) => { ev.preventDefault(); load(false); });
        form.addEventListener('reset', () => window.setTimeout(() => load(false), 0));
        more.addEventListener('click', () => load(true));
        await load(false);
        page.refresh = () => load(false);
    }

    const page = {title: 'Le territoire', render, refresh: null};
    MG.register('territoire', page);
})();

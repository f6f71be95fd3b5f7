/* Page « Coordination »: the coordinators' analyses of GET
 * /api/analysis/NAME (the JSON of `maillage NAME --json`): overlaps,
 * duplicates, gaps with population, complementarities, the six-cell
 * diagnostic and the eight-question check, each downloadable as CSV (and
 * GeoJSON where the CLI offers it). Each analysis runs when its section
 * is opened (they read every offer). */
'use strict';

(function () {
    const {el, clear, message, api, table, joined} = MG;

    const fmtInt = new Intl.NumberFormat('fr-FR');
    const fmtPct = new Intl.NumberFormat('fr-FR', {style: 'percent', maximumFractionDigits: 1});
    const num = (n) => (n === null || n === undefined) ? '—' : fmtInt.format(n);
    const km = (n) => (n === null || n === undefined) ? '—'
        : new Intl.NumberFormat('fr-FR', {maximumFractionDigits: 1}).format(n) + ' km';

    function offerNames(offers) {
        return (offers || []).map((o) => (o.nom || o.id) + (o.commune ? ' (' + o.commune + ')' : ''))
            .join(' ; ');
    }

    /* Each analysis: its title, what it answers, the query parameters
       asked for, its downloads and how to draw its JSON. */
    const ANALYSES = [
        {name: 'overlaps', title: 'Offres qui se juxtaposent',
         intro: 'Des structures proches proposent les mêmes services aux mêmes publics : ' +
                'de quoi se coordonner plutôt que s\'empiler.',
         formats: ['csv', 'geojson'],
         draw(d) {
             const groups = d.groupes || [];
             return [el('p', null, num(d.offres_examinees) + ' offres examinées, ' +
                        MG.plural(groups.length, 'groupe', 'groupes') + ' de juxtaposition.'),
                     table('Groupes d\'offres qui se juxtaposent', [
                         {label: 'Rang', get: (g) => String(g.rang)},
                         {label: 'Services communs', get: (g) => joined(g.services_communs)},
                         {label: 'Publics', get: (g) => g.tous_publics ? 'tout public'
                             : joined(g.publics_communs)},
                         {label: 'Structures', get: (g) => num(g.structures)},
                         {label: 'Distance max.', get: (g) => km(g.distance_max_km)},
                         {label: 'Offres', get: (g) => offerNames(g.offres)},
                     ], groups)];
         }},
        {name: 'duplicates', title: 'Lieux listés deux fois',
         intro: 'Un même lieu publié plusieurs fois (même SIRET, même adresse, noms proches).',
         formats: ['csv'],
         draw(d) {
             const groups = d.groupes || [];
             return [el('p', null, num(d.offres) + ' offres, ' + num(d.paires_doublons) +
                        ' paires de doublons probables, en ' +
                        MG.plural(groups.length, 'groupe', 'groupes') + '.'),
                     table('Doublons probables', [
                         {label: 'Rang', get: (g) => String(g.rang)},
                         {label: 'Score', get: (g) => String(g.score)},
                         {label: 'Offres', get: (g) => offerNames(g.offres)},
                         {label: 'Indices', get: (g) => (g.paires || []).map((p) => p.indices)
                             .filter(Boolean).join(' ; ')},
                     ], groups)];
         }},
        {name: 'gaps', title: 'Communes sans offre à portée',
         intro: 'Pour chaque service, les communes sans offre à moins de la distance choisie, ' +
                'avec leur population : les zones à servir en premier.',
         formats: ['csv', 'geojson'],
         params: [{name: 'within', label: 'Distance (km)', type: 'number', value: '10'}],
         draw(d) {
             const out = [el('p', null, 'Population du territoire : ' + num(d.population) +
                             ' habitants, ' + num(d.lieux_evalues) + ' communes évaluées, ' +
                             'portée ' + km(d.within_km) + '.')];
             const rows = d.analyses || [];
             out.push(table('Couverture par service', [
                 {label: 'Service ou public', get: (a) => a.libelle},
                 {label: 'Offres', get: (a) => num(a.offres)},
                 {label: 'Part de la population à portée',
                  get: (a) => a.part_a_portee === undefined ? '—' : fmtPct.format(a.part_a_portee)},
                 {label: 'Communes sans offre', get: (a) => num(a.communes_sans_offre)},
                 {label: 'Population sans offre',
                  get: (a) => num((a.population || 0) - (a.population_a_portee || 0))},
                 {label: 'Communes les plus peuplées sans offre',
                  get: (a) => (a.sans_offre || []).slice(0, 5).map((c) => c.nom + ' (' +
                      num(c.population) + ' hab., ' + km(c.offre_la_plus_proche_km) + ')')
                      .join(' ; ')},
             ], rows));
             return out;
         }},
        {name: 'complementarities', title: 'Complémentarités',
         intro: 'Autour d\'une structure (par défaut la vôtre) : qui apporte ce qu\'elle n\'a pas, ' +
                'et qui propose la même chose.',
         formats: ['csv', 'geojson'],
         params: [{name: 'structure', label: 'Structure (nom, SIRET ou début de clé ; vide : la vôtre)',
                   type: 'text', value: ''},
                  {name: 'within', label: 'Rayon (km)', type: 'number', value: '15'}],
         draw(d) {
             const s = d.structure || {};
             return [el('p', null, 'Structure : ' + (s.nom || '—') + ', rayon ' + km(d.within_km) + '.'),
                     table('Partenaires possibles', [
                         {label: 'Structure', get: (p) => p.structure},
                         {label: 'Commune', get: (p) => p.commune || '—'},
                         {label: 'Distance', get: (p) => km(p.distance_km)},
                         {label: 'Ce qu\'elle apporte', get: (p) => [].concat(
                             p.services_en_plus || [], p.publics_en_plus || [],
                             p.prise_en_charge_en_plus || [], p.accompagnement_en_plus || [])
                             .join(', ')},
                     ], d.partenaires || []),
                     table('Mêmes services : à qui parler pour se coordonner', [
                         {label: 'Structure', get: (p) => p.structure},
                         {label: 'Commune', get: (p) => p.commune || '—'},
                         {label: 'Distance', get: (p) => km(p.distance_km)},
                         {label: 'Services communs', get: (p) => joined(p.services_communs)},
                     ], d.a_coordonner || [])];
         }},
        {name: 'diagnostic', title: 'Diagnostic de territoire',
         intro: 'Les six questions du diagnostic : qui, quoi, où, comment, pour qui, pour quoi, ' +
                'et les manques.',
         formats: ['csv'],
         params: [{name: 'departement', label: 'Département (vide : tout)', type: 'text', value: ''}],
         draw: drawDiagnostic},
        {name: 'check', title: 'Les huit questions, offre par offre',
         intro: 'Chaque offre répond-elle à : qui, quoi, pour qui, où, durée, fréquence, ' +
                'modalités, démarche ?',
         formats: ['csv'],
         draw(d) {
             const offers = d.offres || [];
             return [el('p', null, num(d.nombre) + ' offres : ' + num(d.completes) + ' complètes, ' +
                        num(d.a_completer) + ' à compléter, ' + num(d.a_mettre_a_jour) +
                        ' à mettre à jour.'),
                     table('Lisibilité des offres', [
                         {label: 'Offre', get: (o) => (o.nom || o.id) + ' — ' + MG.shortId(o.id)},
                         {label: 'Commune', get: (o) => o.commune || '—'},
                         {label: 'Questions répondues', get: (o) => o.questions_repondues + ' sur 8'},
                         {label: 'Sans réponse', get: (o) => (o.questions || [])
                             .filter((q) => !(q.repondue || q.ok)).map((q) => q.question).join(' ')},
                     ], offers.slice(0, 300))];
         }},
    ];

    function cell(title, items) {
        return el('section', {class: 'case'}, el('h4', null, title), el('ul', null,
            items.filter(Boolean).map((t) => el('li', null, t))));
    }

    function counts(list, what) {
        return (list || []).slice(0, 8).map((x) => x.libelle + ' : ' + num(x[what || 'offres']));
    }

    function drawDiagnostic(d) {
        const t = d.territoire || {};
        const qui = d.qui || {}, quoi = d.quoi || {}, ou = d.ou || {}, comment = d.comment || {};
        const pq = d.pour_qui || {}, pqo = d.pour_quoi || {}, m = d.manques || {};
        const grid = el('div', {class: 'diagnostic'},
            cell('Qui — les acteurs', [num(t.structures) + ' structures'].concat(
                counts(qui.typologies, 'structures'))),
            cell('Quoi — les actions', [num(t.offres) + ' offres'].concat(counts(quoi.services))),
            cell('Où — les lieux', [num(ou.communes_avec_offre) + ' communes avec une offre sur ' +
                                    num(ou.communes_du_territoire),
                                    'Population des communes avec offre : ' +
                                    num(ou.population_des_communes_avec_offre) + ' sur ' +
                                    num(ou.population)].concat(counts(ou.communes_les_plus_dotees))),
            cell('Comment — les démarches', counts(comment.accompagnement).concat(
                counts(comment.frais))),
            cell('Pour qui — les publics', ['Tout public : ' + num(pq.tous_publics) + ' offres']
                .concat(counts(pq.publics))),
            cell('Pour quoi — les objectifs', counts(pqo.objectifs_declares).concat(
                counts(pqo.objectifs_des_services))));
        const manques = [];
        for (const s of m.services_absents || [])
            manques.push('Service absent : ' + (s.libelle || s));
        for (const p of m.publics_sans_offre_dediee || [])
            manques.push('Public sans offre dédiée : ' + (p.libelle || p));
        for (const c of m.couverture || [])
            manques.push((c.libelle || '') + ' : ' + num(c.communes_sans_offre) +
                         ' communes sans offre à portée, ' + num(c.population_sans_offre) +
                         ' habitants');
        if (m.sans_horaires)
            manques.push(num(m.sans_horaires) + ' offres sans horaires');
        if (m.a_mettre_a_jour)
            manques.push(num(m.a_mettre_a_jour) + ' offres à mettre à jour');
        return [grid, el('h4', null, 'Les manques'),
                manques.length ? el('ul', null, manques.map((x) => el('li', null, x)))
                               : el('p', null, 'Aucun manque relevé.')];
    }

    function analysisSection(a) {
        const hid = 'titre-' + a.name;
        const body = el('div', {class: 'resultat', 'aria-live': 'polite'});
        const msg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const inputs = [];
        const form = el('form', {class: 'filtres'});
        for (const p of a.params || []) {
            const id = MG.uid(a.name + '-' + p.name);
            const input = el('input', {id, name: p.name, type: 'text',
                                       inputmode: p.type === 'number' ? 'decimal' : null,
                                       value: p.value});
            inputs.push(input);
            form.appendChild(el('div', {class: 'champ'}, el('label', {for: id}, p.label), input));
        }
        function params(format) {
            const q = new URLSearchParams();
            for (const i of inputs)
                if (i.value.trim())
                    q.set(i.name, i.value.trim());
            if (format)
                q.set('format', format);
            return q.toString();
        }
        const downloads = el('span', {class: 'telechargements'});
        function drawDownloads() {
            clear(downloads);
            for (const f of a.formats)
                downloads.appendChild(MG.downloadButton(
                    'Télécharger en ' + (f === 'csv' ? 'CSV' : 'GeoJSON'),
                    '/api/analysis/' + a.name + '?' + params(f),
                    'maillage-' + a.name + '.' + f));
        }
        drawDownloads();
        let loaded = false;
        async function load() {
            message(msg, 'erreur', '');
            clear(body);
            body.appendChild(el('p', null, 'Calcul en cours…'));
            try {
                const d = await api('GET', '/api/analysis/' + a.name + '?' + params('json'));
                clear(body);
                for (const n of a.draw(d))
                    body.appendChild(n);
                loaded = true;
            } catch (e) {
                clear(body);
                message(msg, 'erreur', e.message);
            }
        }
        form.append(el('div', {class: 'actions'},
                       el('button', {type: 'submit'}, 'Afficher'), downloads));
        form.addEventListener('submit', (ev) => { ev.preventDefault(); drawDownloads(); load(); });
        for (const i of inputs)
            i.addEventListener('change', drawDownloads);
        const details = el('details', {class: 'bloc analyse', id: 'analyse-' + a.name},
                           el('summary', null, el('h2', {id: hid, class: 'dans-resume'}, a.title)),
                           el('p', null, a.intro), form, msg, body);
        details.addEventListener('toggle', () => {
            if (details.open && !loaded)
                load();
        });
        return {node: details, refresh: () => { if (details.open) return load(); return null; }};
    }

    async function render(main) {
        main.appendChild(el('p', null, 'Les analyses portent sur toutes les offres que connaît ' +
                            'votre nœud. Ouvrez une rubrique pour la calculer.'));
        const sections = ANALYSES.map(analysisSection);
        for (const s of sections)
            main.appendChild(s.node);
        page.refresh = async () => {
            await Promise.all(sections.map((s) => s.refresh()));
        };
    }

    const page = {title: 'Coordination', render, refresh: null};
    MG.register('coordination', page);
})();

/* Page « Mon offre »: this node's profile and offers, edited through
 * forms built from GET /api/standard (the national standard's fields and
 * enumerations), with the eight-question readability check shown live
 * (POST /api/check, debounced, nothing stored). */
'use strict';

(function () {
    const {el, clear, message, api} = MG;

    /* Where each offer field goes in the form; fields not listed here
       (newer standard fields included) land in « Autres champs ». */
    const GROUPS = [
        {legend: 'Que proposez-vous ?', open: true,
         names: ['services', 'presentation_resume', 'presentation_detail']},
        {legend: 'Pour qui ?', open: true,
         names: ['publics_specifiquement_adresses', 'prise_en_charge_specifique']},
        {legend: 'Comment, quand, combien de temps ?', open: true,
         names: ['modalites_accompagnement', 'modalites_acces', 'frais_a_charge', 'duree',
                 'frequence', 'horaires', 'demarche', 'prise_rdv', 'objectifs']},
        {legend: 'Où et qui contacter (repris de la fiche de la structure si vide)', open: false,
         names: ['nom', 'pivot', 'adresse', 'complement_adresse', 'commune', 'code_postal',
                 'code_insee', 'latitude', 'longitude', 'telephone', 'courriels', 'site_web',
                 'itinerance']},
    ];
    /* Set by the node, not typed by the user. */
    const HIDDEN = new Set(['id', 'date_maj', 'source']);

    /* The profile's fields: the standard's place and contact fields. */
    const PROFILE_FIELDS = ['nom', 'pivot', 'adresse', 'complement_adresse', 'commune',
                            'code_postal', 'code_insee', 'latitude', 'longitude', 'typologie',
                            'telephone', 'courriels', 'site_web', 'horaires',
                            'presentation_resume'];

    function fieldType(f) {
        return (f.type || 'string').toLowerCase();
    }

    function isMulti(f) {
        const t = fieldType(f);
        return t === 'enum' || t === 'list';
    }

    /* One form control for one field of the standard. Returns {node, get,
       set}: get() gives the JSON value (string, number, array or null),
       set(v) fills the control from a stored value. */
    function control(std, f, onChange) {
        const id = MG.uid('champ-' + f.name);
        const t = fieldType(f);
        const label = (f.label || f.title || f.name) + (f.required ? ' (obligatoire)' : '');
        const hintId = id + '-aide';
        /* The label says the format in words (« Code postal (5 chiffres) »);
           the schema's regular expression would mean nothing to most users. */
        const hint = null;
        if (t === 'enum') {
            const values = MG.enumValues(std, f.name);
            const boxes = values.map((v) => {
                const cid = MG.uid('choix');
                const box = el('input', {type: 'checkbox', id: cid, name: f.name, value: v.value,
                                         onchange: onChange});
                return {box, node: el('div', {class: 'choix'}, box,
                                      el('label', {for: cid}, v.label))};
            });
            const node = el('fieldset', {class: 'choix-multiples', 'data-champ': f.name},
                            el('legend', null, label), boxes.map((b) => b.node));
            return {node,
                    get: () => { const v = boxes.filter((b) => b.box.checked)
                                     .map((b) => b.box.value);
                                 return v.length ? v : null; },
                    set: (v) => { const want = new Set(MG.list(v));
                                  for (const b of boxes) b.box.checked = want.has(b.box.value); }};
        }
        let input;
        const common = {id, name: f.name, oninput: onChange,
                        'aria-describedby': hint || t === 'list' ? hintId : null};
        if (t === 'list' || f.name === 'presentation_detail') {
            input = el('textarea', Object.assign({rows: t === 'list' ? 2 : 4}, common));
        } else if (t === 'number') {
            input = el('input', Object.assign({type: 'text', inputmode: 'decimal'}, common));
        } else if (t === 'date') {
            input = el('input', Object.assign({type: 'date'}, common));
        } else {
            input = el('input', Object.assign({type: 'text'}, common));
            if (f.max_chars && f.max_chars < 8192)
                input.setAttribute('maxlength', f.max_chars);
        }
        const help = t === 'list' ? 'Une valeur par ligne.' + (hint ? ' ' + hint : '') : hint;
        const node = el('div', {class: 'champ', 'data-champ': f.name},
                        el('label', {for: id}, label), input,
                        help ? el('p', {class: 'aide', id: hintId}, help) : null);
        return {node,
                get: () => {
                    const raw = input.value.trim();
                    if (!raw)
                        return null;
                    if (t === 'list')
                        return raw.split('\n').map((s) => s.trim()).filter((s) => s);
                    if (t === 'number') {
                        const n = Number(raw.replace(',', '.'));
                        return Number.isFinite(n) ? n : raw;
                    }
                    return raw;
                },
                set: (v) => {
                    if (v === null || v === undefined)
                        input.value = '';
                    else if (t === 'list')
                        input.value = MG.list(v).join('\n');
                    else
                        input.value = String(v);
                }};
    }

    /* The live readability check: the eight questions, answered or not
       (POST /api/check: {valid, error, questions: [{question, ok, hint}]}). */
    /* The check's hints are shared with the command line and name its
       options in parentheses, "(--telephone, --courriels)": meaningless in
       a form, so they are left out here (the fields carry the labels). */
    function withoutOptions(text) {
        return text ? text.replace(/ ?\(--[^()]*(\([^()]*\)[^()]*)*\)/g, '') : text;
    }

    function renderCheck(box, result) {
        clear(box);
        const questions = result.questions || [];
        const ok = (q) => q.ok !== undefined ? q.ok : q.repondue;
        const answered = questions.filter(ok).length;
        box.appendChild(el('h3', null, 'Les huit questions : ' + answered + ' sur ' +
                           questions.length + ' répondues'));
        const ul = el('ul', {class: 'questions'});
        for (const q of questions) {
            const yes = ok(q);
            const why = withoutOptions(q.hint || (yes ? q.conseil : q.manque));
            ul.appendChild(el('li', {class: yes ? 'oui' : 'non'},
                              el('span', {class: 'pastille', 'aria-hidden': 'true'},
                                 yes ? '✓' : '✗'),
                              el('span', {class: 'invisible'}, yes ? 'Répondue : '
                                 : 'Sans réponse : '),
                              el('strong', null, q.question),
                              why ? el('span', {class: 'detail'},
                                       ' — ' + (yes ? 'conseil : ' : 'à ajouter : ') + why)
                                  : null));
        }
        box.appendChild(ul);
        if (result.valid === false && result.error)
            box.appendChild(el('p', {class: 'message erreur'},
                               'Pas encore publiable : ' + result.error));
        else if (result.valid === true)
            box.appendChild(el('p', {class: 'message ok'}, 'Publiable en l\'état.'));
    }

    function debounce(fn, ms) {
        let t = null;
        return (...args) => {
            if (t)
                window.clearTimeout(t);
            t = window.setTimeout(() => { t = null; fn(...args); }, ms);
        };
    }

    /* ---------------------------------------------------------------- */

    async function render(main) {
        const std = await MG.standard();
        const fields = (std.offer_fields || std.fields || []).filter((f) => !HIDDEN.has(f.name));
        const inherited = new Set(std.inherited || []);
        for (const f of fields)
            if (inherited.has(f.name))
                f.required = false;   /* taken from the profile when left empty */
        const byName = new Map(fields.map((f) => [f.name, f]));

        /* --- profile ------------------------------------------------- */
        const profSection = el('section', {'aria-labelledby': 'titre-fiche'},
                               el('h2', {id: 'titre-fiche'}, 'La fiche de votre structure'));
        const profMsg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const profControls = [];
        const profForm = el('form', {id: 'form-fiche', novalidate: true});
        const profFields = el('div', {class: 'grille'});
        for (const name of (std.profile_fields || PROFILE_FIELDS)) {
            const f = typeof name === 'string'
                ? (byName.get(name) || {name, type: name === 'typologie' ? 'list' : 'string',
                                        title: name})
                : name;
            const c = control(std, Object.assign({}, f, {required: f.name === 'nom'}), null);
            profControls.push({name: f.name, c});
            profFields.appendChild(c.node);
        }
        profForm.appendChild(el('details', {class: 'bloc'},
                                el('summary', null, 'Modifier la fiche'), profFields,
                                el('div', {class: 'actions'},
                                   el('button', {type: 'submit'}, 'Enregistrer la fiche')),
                                profMsg));
        const profView = el('div', {class: 'fiche'});
        profSection.append(profView, profForm);
        main.appendChild(profSection);

        function showProfile(p) {
            clear(profView);
            const fieldsOf = p && (p.fields || p);
            if (!fieldsOf || !fieldsOf.nom) {
                profView.appendChild(el('p', null, 'La fiche est encore vide : remplissez au moins ' +
                                        'le nom, le SIRET, l\'adresse, la commune et le code postal.'));
                return;
            }
            const dl = el('dl', {class: 'resume'});
            for (const [k, label] of [['nom', 'Nom'], ['adresse', 'Adresse'],
                                      ['commune', 'Commune'], ['code_postal', 'Code postal'],
                                      ['pivot', 'SIRET / RNA'], ['telephone', 'Téléphone'],
                                      ['courriels', 'Courriel']]) {
                if (fieldsOf[k] !== undefined && fieldsOf[k] !== null)
                    dl.append(el('dt', null, label), el('dd', null, MG.joined(fieldsOf[k])));
            }
            profView.appendChild(dl);
            for (const {name, c} of profControls)
                c.set(fieldsOf[name]);
        }

        async function loadProfile() {
            try {
                showProfile(await api('GET', '/api/profile'));
            } catch (e) {
                if (e.status === 404)
                    showProfile(null);
                else
                    message(profMsg, 'erreur', e.message);
            }
        }

        profForm.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            const body = {};
            for (const {name, c} of profControls)
                body[name] = c.get();
            message(profMsg, 'erreur', '');
            try {
                const p = await api('PUT', '/api/profile', {fields: body});
                showProfile(p);
                message(profMsg, 'ok', 'Fiche enregistrée et signée.');
                MG.announce('Fiche enregistrée.');
                MG.wrote();
            } catch (e) {
                message(profMsg, 'erreur', e.message);
            }
        });

        /* --- offer form ---------------------------------------------- */
        const formSection = el('section', {'aria-labelledby': 'titre-form-offre'});
        const formTitle = el('h2', {id: 'titre-form-offre'}, 'Ajouter une offre');
        const form = el('form', {id: 'form-offre', novalidate: true});
        const formMsg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const checkBox = el('div', {class: 'verification', id: 'verification',
                                    'aria-live': 'polite'});
        const controls = new Map();
        let editing = null;     // id of the offer being edited, or null

        const runCheck = debounce(async () => {
            try {
                const r = await api('POST', '/api/check', {fields: collect()});
                renderCheck(checkBox, r);
            } catch (e) {
                clear(checkBox);
                checkBox.appendChild(el('p', {class: 'message erreur'}, e.message));
            }
        }, 400);

        const placed = new Set();
        for (const g of GROUPS) {
            const inner = [];
            for (const n of g.names) {
                const f = byName.get(n);
                if (!f)
                    continue;
                placed.add(n);
                const c = control(std, f, runCheck);
                controls.set(n, c);
                inner.push(c.node);
            }
            form.appendChild(el('details', {class: 'bloc', open: g.open},
                                el('summary', null, g.legend), el('div', {class: 'grille'}, inner)));
        }
        const rest = fields.filter((f) => !placed.has(f.name));
        if (rest.length) {
            const inner = rest.map((f) => {
                const c = control(std, f, runCheck);
                controls.set(f.name, c);
                return c.node;
            });
            form.appendChild(el('details', {class: 'bloc'},
                                el('summary', null, 'Autres champs du standard'),
                                el('div', {class: 'grille'}, inner)));
        }
        const submit = el('button', {type: 'submit', id: 'publier-offre'}, 'Publier l\'offre');
        const cancel = el('button', {type: 'button', class: 'secondaire', hidden: true,
                                     onclick: () => startNew()}, 'Annuler la modification');
        form.append(el('div', {class: 'actions'}, submit, cancel), formMsg);
        formSection.append(formTitle,
                           el('p', null, 'Choisissez dans les listes du standard national. ' +
                              'Les champs laissés vides sont repris de la fiche de la structure.'),
                           el('div', {class: 'deux-colonnes'}, form,
                              el('aside', {'aria-label': 'Lisibilité de l\'offre'}, checkBox)));

        function collect() {
            const out = {};
            for (const [name, c] of controls) {
                const v = c.get();
                if (v !== null)
                    out[name] = v;
            }
            return out;
        }

        function startNew() {
            editing = null;
            for (const c of controls.values())
                c.set(null);
            formTitle.textContent = 'Ajouter une offre';
            submit.textContent = 'Publier l\'offre';
            cancel.hidden = true;
            message(formMsg, 'erreur', '');
            runCheck();
        }

        function startEdit(offer) {
            editing = offer.id;
            for (const [name, c] of controls)
                c.set(offer.fields[name]);
            formTitle.textContent = 'Modifier l\'offre ' + MG.shortId(offer.id);
            submit.textContent = 'Enregistrer les modifications';
            cancel.hidden = false;
            message(formMsg, 'erreur', '');
            runCheck();
            formTitle.setAttribute('tabindex', '-1');
            formTitle.focus();
        }

        form.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            message(formMsg, 'erreur', '');
            submit.disabled = true;
            try {
                let o;
                if (editing) {
                    /* Every field the form shows: an emptied one is removed. */
                    const fieldsOut = {};
                    for (const [name, c] of controls)
                        fieldsOut[name] = c.get();
                    o = await api('PUT', '/api/offers/' + encodeURIComponent(editing),
                                  {fields: fieldsOut});
                    message(formMsg, 'ok', 'Offre ' + MG.shortId(o.id) + ' modifiée et signée.');
                } else {
                    o = await api('POST', '/api/offers', {fields: collect()});
                    message(formMsg, 'ok', 'Offre ' + MG.shortId(o.id) + ' publiée : elle part ' +
                            'vers les nœuds voisins.');
                    for (const c of controls.values())
                        c.set(null);
                }
                MG.announce(formMsg.textContent);
                editing = null;
                formTitle.textContent = 'Ajouter une offre';
                submit.textContent = 'Publier l\'offre';
                cancel.hidden = true;
                MG.wrote();
                await loadOffers();
            } catch (e) {
                message(formMsg, 'erreur', e.message);
            } finally {
                submit.disabled = false;
            }
        });

        /* --- my offers ----------------------------------------------- */
        const listSection = el('section', {'aria-labelledby': 'titre-mes-offres'},
                               el('h2', {id: 'titre-mes-offres'}, 'Vos offres publiées'));
        const listBox = el('div', {id: 'mes-offres'});
        const listMsg = el('p', {class: 'message', hidden: true, role: 'alert'});
        listSection.append(listMsg, listBox);
        main.append(formSection, listSection);

        async function loadOffers() {
            let r;
            try {
                r = await api('GET', '/api/offers?mine=1&limit=1000');
            } catch (e) {
                message(listMsg, 'erreur', e.message);
                return;
            }
            message(listMsg, 'erreur', '');
            clear(listBox);
            const offers = r.offers || [];
            if (!offers.length) {
                listBox.appendChild(el('p', null, 'Aucune offre publiée pour l\'instant : ' +
                                       'utilisez le formulaire ci-dessous.'));
                return;
            }
            listBox.appendChild(el('p', null, MG.plural(r.total, 'offre publiée', 'offres publiées') +
                                   (r.total > offers.length ? ' (' + offers.length + ' affichées)' : '') +
                                   '.'));
            listBox.appendChild(MG.table('Vos offres', [
                {label: 'Services', get: (o) => MG.joined(o.fields.services) ||
                    o.fields.nom || MG.shortId(o.id)},
                {label: 'Lieu', get: (o) => [o.fields.nom, o.fields.commune].filter(Boolean)
                    .join(' — ')},
                {label: 'Présentation', get: (o) => o.fields.presentation_resume || '—'},
                {label: 'Mise à jour', get: (o) => (o.updated || '').slice(0, 10)},
                {label: 'Actions', get: (o) => {
                    const delMsg = el('span', {class: 'message erreur', hidden: true,
                                               role: 'alert'});
                    return el('div', {class: 'actions serre'},
                       el('button', {type: 'button', class: 'secondaire',
                                     onclick: () => startEdit(o)},
                          'Modifier', el('span', {class: 'invisible'}, ' l\'offre ' + MG.shortId(o.id))),
                       el('button', {type: 'button', class: 'danger', onclick: async () => {
                           if (!window.confirm('Supprimer cette offre chez tous les voisins ?'))
                               return;
                           try {
                               await api('DELETE', '/api/offers/' + encodeURIComponent(o.id));
                               MG.announce('Offre supprimée.');
                               MG.wrote();
                               await loadOffers();
                           } catch (e) {
                               message(delMsg, 'erreur', e.message);
                           }
                       }}, 'Supprimer', el('span', {class: 'invisible'}, ' l\'offre ' + MG.shortId(o.id))),
                       delMsg);
                }},
            ], offers));
        }

        await Promise.all([loadProfile(), loadOffers()]);
        runCheck();
        page.refresh = async () => { await loadOffers(); };
    }

    const page = {title: 'Mon offre', render, refresh: null};
    MG.register('offre', page);
})();

/* Page « Pratiques »: practice-sharing notes, full-text search (accents
 * and case ignored, by the store's FTS index), and a form to write one. */
'use strict';

(function () {
    const {el, clear, message, api, joined} = MG;

    /* The search snippet with its highlights: the API marks matches
       between [ and ] (`snippet`); the CLI's JSON uses <mark>…</mark>
       (`extrait`). Either way the text is inserted as text. */
    function snippet(n) {
        if (n.extrait)
            return MG.markedText(n.extrait);
        const frag = document.createDocumentFragment();
        const parts = String(n.snippet).split(/(\[[^\]\n]*\])/);
        for (const p of parts) {
            if (!p)
                continue;
            if (p.length > 2 && p[0] === '[' && p[p.length - 1] === ']')
                frag.appendChild(el('mark', null, p.slice(1, -1)));
            else
                frag.appendChild(document.createTextNode(p));
        }
        return frag;
    }

    /* The first words of a note, for the list. */
    function debut(text) {
        const t = String(text || '').replace(/\s+/g, ' ').trim();
        return t.length > 200 ? t.slice(0, 200).replace(/\s\S*$/, '') + ' …' : t;
    }

    function noteCard(n) {
        return el('li', {class: 'carte note'},
            el('h3', null, n.titre || 'Note'),
            n.snippet || n.extrait ? el('p', {class: 'extrait'}, snippet(n))
                : el('p', {class: 'extrait'}, debut(n.texte)),
            el('details', null, el('summary', null, 'Lire la note',
                                   el('span', {class: 'invisible'}, ' « ' + (n.titre || '') + ' »')),
               el('div', {class: 'texte-note'},
                  String(n.texte || '').split(/\n{2,}/).map((para) => el('p', null, para)))),
            el('p', {class: 'meta'}, 'Par ' + (n.structure || MG.shortId(n.auteur)) +
               (n.mis_a_jour ? ', ' + n.mis_a_jour.slice(0, 10) : '') +
               (n.tags && n.tags.length ? ' — étiquettes : ' + joined(n.tags) : '') +
               (n.licence ? ' — licence ' + n.licence : '')));
    }

    async function render(main) {
        const qId = MG.uid('q');
        const q = el('input', {type: 'search', id: qId, name: 'q', autocomplete: 'off'});
        const searchForm = el('form', {role: 'search', class: 'filtres', id: 'recherche-notes'},
            el('div', {class: 'champ'}, el('label', {for: qId}, 'Chercher dans les notes'), q),
            el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Chercher'),
               el('button', {type: 'button', class: 'secondaire', onclick: () => {
                   q.value = '';
                   load();
               }}, 'Toutes les notes')));
        const summary = el('p', {id: 'resultat-notes', 'aria-live': 'polite'});
        const msg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const listBox = el('div', {id: 'liste-notes'});

        const ids = {title: MG.uid('n'), text: MG.uid('n'), tags: MG.uid('n'), licence: MG.uid('n')};
        const title = el('input', {type: 'text', id: ids.title, required: true, maxlength: 200});
        const text = el('textarea', {id: ids.text, rows: 8, required: true});
        const tags = el('input', {type: 'text', id: ids.tags, 'aria-describedby': ids.tags + '-aide'});
        const licence = el('input', {type: 'text', id: ids.licence,
                                     'aria-describedby': ids.licence + '-aide'});
        const writeMsg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const writeForm = el('form', {id: 'form-note', novalidate: true},
            el('div', {class: 'champ'}, el('label', {for: ids.title}, 'Titre (obligatoire)'), title),
            el('div', {class: 'champ'}, el('label', {for: ids.text}, 'Texte (obligatoire)'), text),
            el('div', {class: 'champ'}, el('label', {for: ids.tags}, 'Étiquettes'), tags,
               el('p', {class: 'aide', id: ids.tags + '-aide'}, 'Séparées par des virgules.')),
            el('div', {class: 'champ'}, el('label', {for: ids.licence}, 'Licence'), licence,
               el('p', {class: 'aide', id: ids.licence + '-aide'},
                  'Vide : CC BY-SA 4.0 (chacun peut reprendre la pratique en vous citant).')),
            el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Publier la note')),
            writeMsg);

        main.append(
            el('section', {'aria-labelledby': 'titre-notes'},
               el('h2', {id: 'titre-notes'}, 'Les notes du réseau'), searchForm, msg, summary,
               listBox),
            el('section', {'aria-labelledby': 'titre-ecrire'},
               el('details', {class: 'bloc'},
                  el('summary', null, el('h2', {id: 'titre-ecrire', class: 'dans-resume'},
                                         'Partager une pratique')),
                  writeForm)));

        async function load() {
            const words = q.value.trim();
            let r;
            try {
                r = await api('GET', '/api/notes' + (words ? '?q=' + encodeURIComponent(words) : ''));
                message(msg, 'erreur', '');
            } catch (e) {
                message(msg, 'erreur', e.message);
                return;
            }
            const notes = r.notes || [];
            summary.textContent = words
                ? MG.plural(notes.length, 'note trouvée', 'notes trouvées') + ' pour « ' + words + ' ».'
                : MG.plural(notes.length, 'note', 'notes') + '.';
            clear(listBox);
            if (notes.length)
                listBox.appendChild(el('ul', {class: 'cartes'}, notes.map(noteCard)));
        }

        searchForm.addEventListener('submit', (e) => { e.preventDefault(); load(); });
        writeForm.addEventListener('submit', async (e) => {
            e.preventDefault();
            const body = {title: title.value.trim(), text: text.value};
            if (tags.value.trim())
                body.tags = tags.value.split(',').map((s) => s.trim()).filter(Boolean);
            if (licence.value.trim())
                body.licence = licence.value.trim();
            try {
                const n = await api('POST', '/api/notes', body);
                message(writeMsg, 'ok', 'Note « ' + (n.titre || body.title) + ' » publiée.');
                MG.announce(writeMsg.textContent);
                writeForm.reset();
                MG.wrote();
                await load();
            } catch (err) {
                message(writeMsg, 'erreur', err.message);
            }
        });

        await load();
        page.refresh = load;
    }

    const page = {title: 'Pratiques', render, refresh: null};
    MG.register('pratiques', page);
})();

/* Page « Événements »: invitations to answer (with an answer form), this
 * node's events with their reply tallies, a form to publish an event, and
 * the calendar (.ics) downloads. */
'use strict';

(function () {
    const {el, clear, message, api, joined} = MG;

    const fmtDay = new Intl.DateTimeFormat('fr-FR', {timeZone: 'Europe/Paris', weekday: 'long',
                                                     day: 'numeric', month: 'long', year: 'numeric'});
    const fmtHour = new Intl.DateTimeFormat('fr-FR', {timeZone: 'Europe/Paris', hour: '2-digit',
                                                      minute: '2-digit'});

    /* « jeudi 3 décembre 2026, 14:00 – 16:00 » in Paris time, from the
       event's ISO times (with their offset). */
    function when(ev) {
        const a = new Date(ev.debut_local || ev.debut);
        const b = new Date(ev.fin_local || ev.fin);
        if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime()))
            return (ev.debut_local || ev.debut || '') + ' – ' + (ev.fin_local || ev.fin || '');
        const da = fmtDay.format(a), db = fmtDay.format(b);
        return da + ', ' + fmtHour.format(a) + ' – ' + (da === db ? '' : db + ', ') + fmtHour.format(b);
    }

    function where(ev) {
        const parts = [ev.adresse, ev.code_postal, ev.commune].filter(Boolean).join(' ');
        const online = ev.en_ligne || ev.lien || null;
        return [parts, online ? 'en ligne : ' + online : null].filter(Boolean).join(' ; ') || '—';
    }

    function tallyText(ev) {
        const n = ev.nombre_reponses || {};
        return (n.oui || 0) + ' oui, ' + (n.peut_etre || 0) + ' peut-être, ' + (n.non || 0) +
            ' non ; ' + MG.plural(ev.places_demandees || 0, 'place demandée', 'places demandées') +
            (ev.capacite ? ' sur ' + ev.capacite : '');
    }

    function eventHead(ev, level) {
        return [el(level || 'h3', null, ev.titre || 'Événement', ev.annule
                   ? el('span', {class: 'annule'}, ' — ANNULÉ') : null),
                el('p', null, el('strong', null, 'Quand : '), when(ev)),
                el('p', null, el('strong', null, 'Où : '), where(ev)),
                el('p', null, el('strong', null, 'Organisé par : '), ev.organisateur ||
                   MG.shortId(ev.auteur)),
                ev.services ? el('p', null, el('strong', null, 'Thèmes : '), joined(ev.services))
                            : null,
                ev.description ? el('p', null, ev.description) : null,
                ev.inscription ? el('p', null, el('strong', null, 'Inscription : '),
                                    ev.inscription) : null];
    }

    function icsButton(ev) {
        return MG.downloadButton('Ajouter à mon agenda (.ics)',
                                 '/api/events/' + encodeURIComponent(ev.id) + '.ics',
                                 'evenement-' + MG.shortId(ev.id) + '.ics');
    }

    /* The answer form of one invitation. */
    function answerForm(ev, done) {
        const name = MG.uid('reponse');
        const msg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const radios = [['yes', 'Oui, nous venons'], ['maybe', 'Peut-être'],
                        ['no', 'Non, pas cette fois']].map(([v, label]) => {
            const id = MG.uid('r');
            return el('div', {class: 'choix'},
                      el('input', {type: 'radio', name, id, value: v, checked: v === 'yes'}),
                      el('label', {for: id}, label));
        });
        const seatsId = MG.uid('places');
        const commentId = MG.uid('commentaire');
        const seats = el('input', {type: 'number', id: seatsId, min: 1, max: 1000, value: '1'});
        const comment = el('input', {type: 'text', id: commentId, maxlength: 1000});
        const form = el('form', {class: 'reponse'},
            el('fieldset', null, el('legend', null, 'Votre réponse'), radios),
            el('div', {class: 'champ'}, el('label', {for: seatsId}, 'Nombre de places'), seats),
            el('div', {class: 'champ'}, el('label', {for: commentId}, 'Commentaire (facultatif)'),
               comment),
            el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Envoyer la réponse')),
            msg);
        form.addEventListener('submit', async (e) => {
            e.preventDefault();
            const answer = form.querySelector('input[name="' + name + '"]:checked').value;
            const body = {answer};
            if (answer !== 'no')
                body.seats = Number(seats.value) || 1;
            if (comment.value.trim())
                body.comment = comment.value.trim();
            try {
                await api('POST', '/api/events/' + encodeURIComponent(ev.id) + '/rsvp', body);
                MG.announce('Réponse envoyée à « ' + (ev.titre || '') + ' ».');
                MG.wrote();
                await done();
            } catch (err) {
                message(msg, 'erreur', err.message);
            }
        });
        return form;
    }

    /* The tally of one of this node's events (GET /api/events/ID). */
    async function tallyBox(ev) {
        const box = el('div', {class: 'decompte'});
        try {
            const full = await api('GET', '/api/events/' + encodeURIComponent(ev.id));
            const t = full.reponses || {};
            box.appendChild(el('p', {class: 'chiffres'},
                'Places confirmées : ' + (t.places_confirmees || 0) +
                (t.capacite ? ' sur ' + t.capacite + ' (reste ' + t.places_restantes + ')' : '') +
                ', en liste d\'attente : ' + (t.places_en_attente || 0) + '.'));
            const rows = [];
            for (const [k, label] of [['confirmees', 'Oui'], ['liste_attente', 'Liste d\'attente'],
                                      ['peut_etre', 'Peut-être'], ['non', 'Non'],
                                      ['autres', 'Autre']])
                for (const r of t[k] || [])
                    rows.push(Object.assign({etat: label}, r));
            if (rows.length)
                box.appendChild(MG.table('Réponses à « ' + (ev.titre || '') + ' »', [
                    {label: 'Structure', get: (r) => r.structure || MG.shortId(r.auteur)},
                    {label: 'Réponse', get: (r) => r.etat},
                    {label: 'Places', get: (r) => String(r.places)},
                    {label: 'Commentaire', get: (r) => r.commentaire || ''},
                ], rows));
            else
                box.appendChild(el('p', null, 'Pas encore de réponse.'));
        } catch (e) {
            box.appendChild(el('p', {class: 'message erreur'}, e.message));
        }
        return box;
    }

    function createForm(std, onDone) {
        const msg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const inputs = {};
        const row = (key, label, attrs, help) => {
            const id = MG.uid('ev-' + key);
            const input = el(attrs && attrs.tag === 'textarea' ? 'textarea' : 'input',
                             Object.assign({id, name: key, type: 'text'},
                                           attrs && attrs.tag ? {rows: 3, type: null} : attrs || {},
                                           help ? {'aria-describedby': id + '-aide'} : {}));
            inputs[key] = input;
            return el('div', {class: 'champ'}, el('label', {for: id}, label), input,
                      help ? el('p', {class: 'aide', id: id + '-aide'}, help) : null);
        };
        const services = MG.enumValues(std, 'services').map((v) => {
            const id = MG.uid('ev-s');
            return el('div', {class: 'choix'},
                      el('input', {type: 'checkbox', id, name: 'services', value: v.value}),
                      el('label', {for: id}, v.label));
        });
        const form = el('form', {id: 'form-evenement', novalidate: true},
            el('div', {class: 'grille'},
               row('title', 'Titre (obligatoire)', {required: true}),
               row('start', 'Début (obligatoire)', {type: 'datetime-local', required: true},
                   'Heure de Paris.'),
               row('end', 'Fin (obligatoire)', {type: 'datetime-local', required: true}),
               row('place', 'Adresse', null, 'Adresse, commune et code postal ensemble, ' +
                   'ou un lien pour un événement en ligne (ou les deux).'),
               row('commune', 'Commune'),
               row('code_postal', 'Code postal', {inputmode: 'numeric'}),
               row('online', 'Lien (événement en ligne)', {type: 'url'}),
               row('territory', 'Territoire invité', null,
                   'Codes de départements ou INSEE de communes, séparés par des virgules ' +
                   '(ex. 16, 17015). Vide : tout le réseau.'),
               row('capacity', 'Nombre de places', {type: 'number', min: 1}),
               row('registration', 'Comment s\'inscrire'),
               row('description', 'Description', {tag: 'textarea'})),
            el('fieldset', {class: 'choix-multiples'}, el('legend', null, 'Thèmes (services)'),
               services),
            el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Publier l\'événement')),
            msg);
        form.addEventListener('submit', async (e) => {
            e.preventDefault();
            const body = {};
            for (const [k, input] of Object.entries(inputs)) {
                const v = input.value.trim();
                if (!v)
                    continue;
                body[k] = k === 'capacity' ? Number(v) : v;
            }
            const chosen = [...form.querySelectorAll('input[name="services"]:checked')]
                .map((b) => b.value);
            if (chosen.length)
                body.services = chosen;
            try {
                const ev = await api('POST', '/api/events', body);
                message(msg, 'ok', 'Événement « ' + (ev.titre || body.title) + ' » publié.');
                MG.announce(msg.textContent);
                form.reset();
                MG.wrote();
                await onDone();
            } catch (err) {
                message(msg, 'erreur', err.message);
            }
        });
        return form;
    }

    async function render(main) {
        const std = await MG.standard();
        const invBox = el('div', {id: 'invitations', 'data-rafraichi': true});
        const mineBox = el('div', {id: 'mes-evenements'});
        const allMsg = el('p', {class: 'message', hidden: true, role: 'alert'});
        main.append(allMsg,
            el('section', {'aria-labelledby': 'titre-invitations'},
               el('h2', {id: 'titre-invitations'}, 'Invitations à répondre'), invBox),
            el('section', {'aria-labelledby': 'titre-mes-ev'},
               el('h2', {id: 'titre-mes-ev'}, 'Vos événements et leurs réponses'), mineBox),
            el('section', {'aria-labelledby': 'titre-agenda'},
               el('h2', {id: 'titre-agenda'}, 'Agenda'),
               el('p', null, 'Tous les événements à venir que vous organisez ou auxquels vous êtes ' +
                  'invité, pour votre logiciel d\'agenda :'),
               MG.downloadButton('Télécharger l\'agenda (.ics)', '/api/events.ics', 'maillage.ics')),
            el('section', {'aria-labelledby': 'titre-creer-ev'},
               el('details', {class: 'bloc'},
                  el('summary', null, el('h2', {id: 'titre-creer-ev', class: 'dans-resume'},
                                         'Publier un événement')),
                  createForm(std, () => load()))));

        async function load() {
            let inv, mine;
            try {
                [inv, mine] = await Promise.all([api('GET', '/api/events?scope=invitations'),
                                                 api('GET', '/api/events?scope=mine')]);
                message(allMsg, 'erreur', '');
            } catch (e) {
                message(allMsg, 'erreur', e.message);
                return;
            }
            clear(invBox);
            const invs = inv.events || [];
            if (!invs.length)
                invBox.appendChild(el('p', null, 'Aucune invitation en attente de réponse.'));
            const ul = el('ul', {class: 'cartes larges'});
            for (const ev of invs)
                ul.appendChild(el('li', {class: 'carte evenement'}, eventHead(ev),
                                  el('p', {class: 'meta'}, ev.ouvert_a_tous ? 'Ouvert à tout le réseau.'
                                     : 'Territoire : ' + joined(ev.territoire)),
                                  icsButton(ev), ev.annule ? null : answerForm(ev, load)));
            if (invs.length)
                invBox.appendChild(ul);

            clear(mineBox);
            const evs = mine.events || [];
            if (!evs.length)
                mineBox.appendChild(el('p', null, 'Vous n\'organisez aucun événement pour l\'instant.'));
            const ul2 = el('ul', {class: 'cartes larges'});
            const tallies = await Promise.all(evs.map((ev) => tallyBox(ev)));
            evs.forEach((ev, i) => {
                ul2.appendChild(el('li', {class: 'carte evenement'}, eventHead(ev),
                                   el('p', {class: 'meta'}, 'Réponses : ' + tallyText(ev)),
                                   tallies[i], icsButton(ev)));
            });
            if (evs.length)
                mineBox.appendChild(ul2);
        }

        await load();
        page.refresh = load;
    }

    const page = {title: 'Événements', render, refresh: null};
    MG.register('evenements', page);
})();

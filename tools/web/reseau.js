/* Page « Réseau »: this node's peers and their sync state, its invite
 * line (with a copy button), and a form to add a peer from its invite. */
'use strict';

(function () {
    const {el, clear, message, api} = MG;

    const STATES = {
        new: 'pas encore relié',
        connecting: 'connexion en cours',
        live: 'relié',
        backoff: 'injoignable, nouvel essai bientôt',
        dead: 'injoignable depuis longtemps',
    };

    function since(ms) {
        if (!ms)
            return 'jamais';
        const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
        if (s < 60)
            return 'il y a ' + s + ' s';
        if (s < 3600)
            return 'il y a ' + Math.round(s / 60) + ' min';
        if (s < 86400)
            return 'il y a ' + Math.round(s / 3600) + ' h';
        return new Date(ms).toLocaleString('fr-FR');
    }

    function lastSync(p) {
        if (p.last_sync_ms !== undefined)
            return since(p.last_sync_ms);
        if (p.last_sync)
            return typeof p.last_sync === 'number' ? since(p.last_sync)
                : since(Date.parse(p.last_sync));
        return 'jamais';
    }

    async function render(main) {
        const status = el('div', {id: 'etat-noeud'});
        const peersBox = el('div', {id: 'liste-pairs'});
        const msg = el('p', {class: 'message', hidden: true, role: 'alert'});

        /* --- invite line --------------------------------------------- */
        const invId = MG.uid('invitation');
        const inviteOut = el('input', {type: 'text', id: invId, readonly: true, class: 'invitation'});
        const copyMsg = el('span', {class: 'message ok', hidden: true, role: 'status'});
        const copyBtn = el('button', {type: 'button', id: 'copier-invitation', onclick: async () => {
            inviteOut.select();
            try {
                await navigator.clipboard.writeText(inviteOut.value);
                message(copyMsg, 'ok', 'Invitation copiée.');
            } catch (e) {
                /* No clipboard permission (plain http on another host):
                   the line stays selected for Ctrl-C. */
                message(copyMsg, 'ok', 'Invitation sélectionnée : copiez-la avec Ctrl-C.');
            }
        }}, 'Copier l\'invitation');
        const inviteMsg = el('p', {class: 'message', hidden: true, role: 'alert'});

        /* --- add a peer ---------------------------------------------- */
        const addId = MG.uid('ajout');
        const addInput = el('input', {type: 'text', id: addId, required: true, autocomplete: 'off',
                                      spellcheck: 'false', 'aria-describedby': addId + '-aide'});
        const addMsg = el('p', {class: 'message', hidden: true, role: 'alert'});
        const addForm = el('form', {id: 'form-pair', novalidate: true},
            el('div', {class: 'champ'}, el('label', {for: addId}, 'Invitation d\'une structure voisine'),
               addInput,
               el('p', {class: 'aide', id: addId + '-aide'},
                  'La ligne qui commence par « maillage: », donnée par « maillage invite » ' +
                  'ou par la page Réseau de son tableau de bord.')),
            el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Ajouter le pair')),
            addMsg);

        main.append(
            el('section', {'aria-labelledby': 'titre-etat'},
               el('h2', {id: 'titre-etat'}, 'Ce nœud'), status),
            el('section', {'aria-labelledby': 'titre-pairs'},
               el('h2', {id: 'titre-pairs'}, 'Pairs'), msg, peersBox),
            el('section', {'aria-labelledby': 'titre-inviter'},
               el('h2', {id: 'titre-inviter'}, 'Inviter une structure'),
               el('p', null, 'Donnez cette ligne à une structure voisine : elle l\'ajoute comme pair ' +
                  'et vos nœuds se synchronisent.'),
               el('div', {class: 'champ'}, el('label', {for: invId}, 'Votre invitation'), inviteOut),
               el('div', {class: 'actions'}, copyBtn, copyMsg), inviteMsg),
            el('section', {'aria-labelledby': 'titre-ajouter'},
               el('h2', {id: 'titre-ajouter'}, 'Ajouter un pair'), addForm));

        addForm.addEventListener('submit', async (e) => {
            e.preventDefault();
            try {
                await api('POST', '/api/peers', {invite: addInput.value.trim()});
                message(addMsg, 'ok', 'Pair ajouté : le nœud va s\'y relier.');
                MG.announce('Pair ajouté.');
                addInput.value = '';
                await load();
            } catch (err) {
                message(addMsg, 'erreur', err.message);
            }
        });

        async function loadInvite() {
            try {
                const r = await api('GET', '/api/invite');
                inviteOut.value = r.invite || '';
                message(inviteMsg, 'erreur', '');
            } catch (e) {
                message(inviteMsg, 'erreur', e.message);
            }
        }

        async function load() {
            let st, pr, pf;
            try {
                [st, pr, pf] = await Promise.all([api('GET', '/api/status'), api('GET', '/api/peers'),
                                                  api('GET', '/api/profiles')]);
                message(msg, 'erreur', '');
            } catch (e) {
                message(msg, 'erreur', e.message);
                return;
            }
            clear(status);
            const node = st.node || {};
            const dl = el('dl', {class: 'resume'},
                el('dt', null, 'Structure'), el('dd', null, st.name || '—'),
                el('dt', null, 'Clé publique'), el('dd', {class: 'cle'}, st.public_key || '—'),
                el('dt', null, 'Démon'), el('dd', null, node.running
                    ? 'en marche' + (node.endpoints ? ' (' + node.endpoints + ')' : '')
                    : 'arrêté'),
                el('dt', null, 'Fiches'), el('dd', null, String(st.versions !== undefined
                    ? st.versions : '—')));
            status.appendChild(dl);

            clear(peersBox);
            const peers = pr.peers || [];
            if (!peers.length) {
                peersBox.appendChild(el('p', null, 'Aucun pair : ajoutez l\'invitation d\'une ' +
                                        'structure voisine ci-dessous.'));
                return;
            }
            /* Peers are keys; their names are in their signed profiles. */
            const names = {};
            for (const p of pf.profiles || [])
                names[p.author] = p.author_name || (p.fields && p.fields.nom);
            peersBox.appendChild(MG.table('Pairs de ce nœud', [
                {label: 'Structure', get: (p) => p.name || names[p.key || p.public_key] ||
                    MG.shortId(p.key || p.public_key) + '…'},
                {label: 'État', get: (p) => STATES[p.state] || p.state || '—'},
                {label: 'Dernière synchronisation', get: lastSync},
                {label: 'Fiches reçues / envoyées', get: (p) => (p.records_in || 0) + ' / ' +
                    (p.records_out || 0)},
                {label: 'Adresse', get: (p) => p.endpoint || '—'},
                {label: 'Action', get: (p) => {
                    const key = p.key || p.public_key || '';
                    const err = el('span', {class: 'message erreur', hidden: true, role: 'alert'});
                    return el('span', null, el('button', {type: 'button', class: 'danger',
                        onclick: async () => {
                            if (!window.confirm('Retirer ce pair ?'))
                                return;
                            try {
                                await api('DELETE', '/api/peers/' + encodeURIComponent(key.slice(0, 16)));
                                MG.announce('Pair retiré.');
                                await load();
                            } catch (e) {
                                message(err, 'erreur', e.message);
                            }
                        }}, 'Retirer', el('span', {class: 'invisible'}, ' le pair ' +
                                           MG.shortId(key))), err);
                }},
            ], peers));
        }

        await Promise.all([load(), loadInvite()]);
        page.refresh = load;
        /* Link states change without any new record: look again every 5 s. */
        timer = window.setInterval(load, 5000);
    }

    let timer = null;
    const page = {title: 'Réseau', render, refresh: null,
                  leave: () => { window.clearInterval(timer); timer = null; }};
    MG.register('reseau', page);
})();

// Browser tests of the dashboard (issue 8): two real `maillage node --http`
// processes linked by invite, driven through headless Debian chromium with
// playwright-core. Run by ctest (tests/browser/CMakeLists.txt) as
//   MAILLAGE_BIN=build/tools/maillage node --test dashboard.test.mjs
// Environment:
//   MAILLAGE_BIN        the maillage binary (required)
//   MG_TEST_DATA        tests/data (the communes table for the map)
//   MG_ARTEFACTS_DIR    where screenshots go (default: a temporary folder)
//   MG_SCREENSHOTS_DIR  if set, the screenshots are copied there too
//                       (docs/screenshots, linked from the user guide)
//   CHROMIUM            the browser (default /usr/bin/chromium)
// Every wait has a deadline; node processes are killed on every exit path.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';

const BIN = process.env.MAILLAGE_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DATA = process.env.MG_TEST_DATA ||
    path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'data');
// Generous: a wait ends as soon as its condition holds, and under
// AddressSanitizer on a loaded 2-core machine a sync can take seconds.
const DEADLINE_MS = 60000;

function fail(msg) {
    console.error('\n' + msg + '\n');
    process.exit(1);
}

if (!BIN || !fs.existsSync(BIN))
    fail(`browser tests: the maillage binary is missing (MAILLAGE_BIN=${BIN})`);
if (!fs.existsSync(CHROMIUM))
    fail(`browser tests: ${CHROMIUM} not found. Install Debian's chromium ` +
         '(apt-get install chromium; tools/test.sh does it) or set CHROMIUM.');
let chromium;
try {
    ({ chromium } = await import('playwright-core'));
} catch (e) {
    fail('browser tests: playwright-core is not installed: run `npm ci` in tests/browser ' +
         '(tools/test.sh does it). ' + e.message);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-browser-'));
const artefacts = process.env.MG_ARTEFACTS_DIR || path.join(work, 'screenshots');
fs.mkdirSync(artefacts, { recursive: true });
const children = [];
let browser = null;

function killAll() {
    for (const c of children) {
        if (c.exitCode === null && c.signalCode === null) {
            try { c.kill('SIGKILL'); } catch (e) { /* already gone */ }
        }
    }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'])
    process.on(sig, () => { killAll(); process.exit(1); });

function cli(dir, ...args) {
    return execFileSync(BIN, ['--dir', dir, ...args], { encoding: 'utf8', timeout: 30000 });
}

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

async function waitFor(what, fn, ms = DEADLINE_MS) {
    const end = Date.now() + ms;
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v)
                return v;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end)
            throw new Error(`timed out after ${ms} ms waiting for ${what}` +
                            (last ? ': ' + last.message : ''));
        await new Promise((r) => setTimeout(r, 100));
    }
}

/* Starts `maillage node --http` on a free port; resolves when it has
   printed its dashboard URL and its invite line. */
async function startNode(dir, extra = []) {
    const port = await freePort();
    const args = ['--dir', dir, 'node', '--listen', 'tcp://127.0.0.1:*', '--interval', '200',
                  '--http', `127.0.0.1:${port}`, ...extra];
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    proc.log = () => out;
    const info = await waitFor(`node ${path.basename(dir)} to start`, () => {
        if (proc.exitCode !== null)
            throw new Error(`maillage node exited (${proc.exitCode}):\n${out}`);
        const url = /Tableau de bord : (http:\/\/\S+)/.exec(out);
        const inv = /(maillage:[0-9a-f]{64}@\S+)/.exec(out);
        return url && inv ? { url: url[1], invite: inv[1] } : null;
    });
    return { proc, port, output: () => out, ...info };
}

function initNode(name, commune, cp, insee, lat, lng, pivot) {
    const dir = path.join(work, name.replace(/\W+/g, '-'));
    execFileSync(BIN, ['--dir', dir, 'init', '--name', name], { encoding: 'utf8' });
    cli(dir, 'profile', 'set', '--nom', name, '--pivot', pivot, '--adresse', '1 place de la Mairie',
        '--commune', commune, '--code-postal', cp, '--code-insee', insee,
        '--latitude', String(lat), '--longitude', String(lng));
    return dir;
}

let A, B, dirA, dirB, context;
const dialogs = [];

async function openPage(node, hash, width = 1280) {
    const page = await context.newPage();
    await page.setViewportSize({ width, height: width < 600 ? 780 : 900 });
    page.on('dialog', async (d) => {
        dialogs.push(d.message());
        await d.dismiss();
    });
    page.on('pageerror', (e) => { pageErrors.push(e.message); });
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    await page.goto(node.url.replace(/#.*$/, '') + (hash || '#/offre'));
    await page.locator('#titre-page').waitFor({ timeout: DEADLINE_MS });
    return page;
}
const pageErrors = [];
const consoleErrors = [];

async function shoot(page, name) {
    const file = path.join(artefacts, name + '.png');
    // The visible screen only: what a user sees first, and small files.
    await page.screenshot({ path: file, fullPage: false });
    if (process.env.MG_SCREENSHOTS_DIR) {
        fs.mkdirSync(process.env.MG_SCREENSHOTS_DIR, { recursive: true });
        fs.copyFileSync(file, path.join(process.env.MG_SCREENSHOTS_DIR, name + '.png'));
    }
}

before(async () => {
    dirA = initNode('Médiathèque de Soyaux', 'Soyaux', '16800', '16374', 45.6441, 0.2000,
                    '21160374200013');
    dirB = initNode('Centre social de Ruelle', 'Ruelle-sur-Touvre', '16600', '16287', 45.6800,
                    0.2300, '42389517300021');
    const communes = path.join(DATA, 'charente.csv');
    A = await startNode(dirA, fs.existsSync(communes) ? ['--communes', communes] : []);
    B = await startNode(dirB, ['--peer', A.invite]);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                      args: ['--no-sandbox', '--disable-gpu'] });
    context = await browser.newContext({ locale: 'fr-FR', timezoneId: 'Europe/Paris' });
    context.setDefaultTimeout(DEADLINE_MS);
});

after(async () => {
    try {
        if (browser)
            await browser.close();
    } finally {
        for (const c of children)
            if (c.exitCode === null)
                c.kill('SIGTERM');
        await Promise.all(children.map((c) => c.exitCode !== null ? null
            : waitFor('node exit', () => c.exitCode !== null || c.signalCode !== null, 10000)
                .catch(() => c.kill('SIGKILL'))));
        killAll();
        if (!process.env.MG_KEEP_WORK)
            fs.rmSync(work, { recursive: true, force: true });
    }
    // Each node stopped cleanly on SIGTERM (under AddressSanitizer, a leak
    // or memory error in the HTTP server makes this exit status non-zero).
    for (const c of children)
        assert.equal(c.exitCode, 0, `a node did not stop cleanly (${c.exitCode ?? c.signalCode}):\n` +
                     (c.log ? c.log().slice(-3000) : ''));
});

test('the main navigation is reachable with Tab and works with Enter', async () => {
    const page = await openPage(A, '#/offre');
    const seen = [];
    for (let i = 0; i < 12; i++) {
        await page.keyboard.press('Tab');
        const f = await page.evaluate(() => {
            const a = document.activeElement;
            return { text: a.textContent.trim(), nav: !!a.closest('nav') };
        });
        if (f.nav)
            seen.push(f.text);
        if (f.text === 'Le territoire')
            break;
    }
    assert.deepEqual(seen.slice(0, 2), ['Mon offre', 'Le territoire'],
                     'Tab reaches the navigation links in order');
    await page.keyboard.press('Enter');
    await page.locator('#titre-page', { hasText: 'Le territoire' }).waitFor();
    assert.equal(await page.locator('nav a[aria-current="page"]').textContent(), 'Le territoire');
    // The skip link jumps to the content and stays on the page.
    for (let i = 0; i < 20; i++) {
        await page.keyboard.press('Shift+Tab');
        if (/Aller au contenu/.test(await page.evaluate(() => document.activeElement.textContent)))
            break;
    }
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'contenu');
    assert.match(page.url(), /#\/territoire$/);
    await page.locator('#titre-page', { hasText: 'Le territoire' }).waitFor();
    await page.close();
});

test('an offer created through the form at A appears at B without reloading', async () => {
    const pageB = await openPage(B, '#/territoire');
    const pageA = await openPage(A, '#/offre');
    const form = pageA.locator('#form-offre');
    await form.getByLabel('Aide aux démarches administratives', { exact: true }).check();
    await form.getByLabel('Seniors', { exact: true }).check();
    // The live check answers as the user types.
    await form.locator('[data-champ="duree"] input').fill('rendez-vous d\'une heure');
    await form.locator('[data-champ="frequence"] input').fill('chaque jeudi matin');
    await form.locator('[data-champ="demarche"] input').fill('Téléphoner à l\'accueil');
    await form.locator('[data-champ="presentation_resume"] input')
        .fill('Atelier papillon : démarches en ligne accompagnées');
    await waitFor('the live check to count 8 questions', async () =>
        /sur 8 répondues/.test(await pageA.locator('#verification').textContent()));
    await pageA.locator('#publier-offre').click();
    await pageA.locator('#form-offre .message.ok').waitFor({ timeout: DEADLINE_MS });
    assert.match(await pageA.locator('#form-offre .message.ok').textContent(), /publiée/);
    await pageA.locator('#mes-offres', { hasText: 'Atelier papillon' }).waitFor();
    await shoot(pageA, 'offre-formulaire');

    // Editing it: the form is filled from the stored offer; a changed field
    // is signed again, the others are kept.
    await pageA.locator('#mes-offres tbody tr', { hasText: 'Atelier papillon' })
        .getByRole('button', { name: /^Modifier/ }).click();
    await waitFor('the edit form', async () =>
        await form.locator('[data-champ="frequence"] input').inputValue() === 'chaque jeudi matin');
    await form.locator('[data-champ="frequence"] input').fill('chaque jeudi et vendredi matin');
    await pageA.locator('#publier-offre').click();
    await waitFor('the edit to be saved', async () =>
        /modifiée/.test(await pageA.locator('#form-offre .message.ok').textContent()));
    const stored = JSON.parse(cli(dirA, 'offer', 'list', '--mine', '--json'));
    assert.equal(stored.length, 1);
    assert.equal(stored[0].frequence, 'chaque jeudi et vendredi matin');
    assert.deepEqual(stored[0].services, ['Aide aux démarches administratives']);
    assert.equal(stored[0].duree, 'rendez-vous d\'une heure');

    // B's territory page was open before: it updates by polling /api/changes.
    const row = pageB.locator('#liste-territoire tbody tr', { hasText: 'Médiathèque de Soyaux' });
    await row.first().waitFor({ timeout: DEADLINE_MS });
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), /Aide aux démarches administratives/);
    assert.match(await row.textContent(), /Seniors/);
    // The filter keeps it for its service and drops it for another.
    await pageB.locator('#filtre-service').selectOption('Aide aux démarches administratives');
    await pageB.getByRole('button', { name: 'Filtrer' }).click();
    await waitFor('the filtered list', async () =>
        /^1 offre\./.test(await pageB.locator('#resultat-territoire').textContent()));
    await pageB.locator('#filtre-service').selectOption('Loisirs et créations numériques');
    await pageB.getByRole('button', { name: 'Filtrer' }).click();
    await waitFor('the empty filtered list', async () =>
        /^0 offre/.test(await pageB.locator('#resultat-territoire').textContent()));
    await pageA.close();
    await pageB.close();
});

test('an event created at A is an invitation at B; B answers; A sees the tally', async () => {
    const pageA = await openPage(A, '#/evenements');
    await pageA.locator('#titre-creer-ev').click();    // opens the <details>
    const f = pageA.locator('#form-evenement');
    const day = new Date(Date.now() + 7 * 86400000).toISOString().slice(0, 10);
    await f.getByLabel('Titre (obligatoire)').fill('Café numérique des aidants');
    await f.getByLabel('Début (obligatoire)').fill(`${day}T14:00`);
    await f.getByLabel('Fin (obligatoire)').fill(`${day}T16:00`);
    await f.getByLabel('Adresse', { exact: true }).fill('1 place de la Mairie');
    await f.getByLabel('Commune', { exact: true }).fill('Soyaux');
    await f.getByLabel('Code postal', { exact: true }).fill('16800');
    await f.getByLabel('Nombre de places').fill('12');
    await f.getByRole('button', { name: 'Publier l\'événement' }).click();
    await f.locator('.message.ok').waitFor({ timeout: DEADLINE_MS });
    await pageA.locator('#mes-evenements', { hasText: 'Café numérique des aidants' }).waitFor();

    const pageB = await openPage(B, '#/evenements');
    const inv = pageB.locator('#invitations .carte', { hasText: 'Café numérique des aidants' });
    await inv.waitFor({ timeout: DEADLINE_MS });
    await shoot(pageB, 'evenements-invitation');
    await inv.getByLabel('Oui, nous venons').check();
    await inv.getByLabel('Nombre de places').fill('2');
    await inv.getByLabel('Commentaire (facultatif)').fill('Deux conseillères');
    await inv.getByRole('button', { name: 'Envoyer la réponse' }).click();
    await pageB.locator('#invitations .carte', { hasText: 'Café numérique des aidants' })
        .waitFor({ state: 'detached', timeout: DEADLINE_MS });

    // A's page is still open: the reply arrives by replication, the page
    // refreshes on the change counter.
    const mine = pageA.locator('#mes-evenements .carte', { hasText: 'Café numérique des aidants' });
    await waitFor('the tally at A', async () =>
        /Places confirmées : 2 sur 12/.test(await mine.textContent()));
    const table = await mine.locator('table').textContent();
    assert.match(table, /Centre social de Ruelle/);
    assert.match(table, /Deux conseillères/);
    await shoot(pageA, 'evenements');
    await pageA.close();
    await pageB.close();
});

test('a note written at A is found at B by full-text search, accents ignored', async () => {
    const pageA = await openPage(A, '#/pratiques');
    await pageA.locator('#titre-ecrire').click();
    const f = pageA.locator('#form-note');
    await f.getByLabel('Titre (obligatoire)').fill('Accueillir les aidants sans rendez-vous');
    await f.getByLabel('Texte (obligatoire)').fill(
        'Le jeudi matin, la médiathèque ouvre un créneau libre.\n\nLes aidants viennent avec ' +
        'leurs questions ; une conseillère répond et note les démarches récurrentes.');
    await f.getByLabel('Étiquettes').fill('accueil, aidants');
    await f.getByRole('button', { name: 'Publier la note' }).click();
    await f.locator('.message.ok').waitFor({ timeout: DEADLINE_MS });

    const pageB = await openPage(B, '#/pratiques');
    const q = pageB.getByLabel('Chercher dans les notes');
    await waitFor('the note at B', async () => {
        await q.fill('creneau recurrentes');
        await pageB.getByRole('button', { name: 'Chercher' }).click();
        return /1 note trouvée/.test(await pageB.locator('#resultat-notes').textContent());
    });
    const hit = pageB.locator('#liste-notes .carte');
    assert.equal(await hit.count(), 1);
    assert.match(await hit.textContent(), /Accueillir les aidants sans rendez-vous/);
    assert.match(await hit.textContent(), /Médiathèque de Soyaux/);
    assert.ok(await hit.locator('mark').count() >= 1, 'the matched words are highlighted');
    await q.fill('recette de cuisine');
    await pageB.getByRole('button', { name: 'Chercher' }).click();
    await waitFor('no result', async () =>
        /0 note trouvée/.test(await pageB.locator('#resultat-notes').textContent()));
    await q.fill('aidants');
    await pageB.getByRole('button', { name: 'Chercher' }).click();
    await waitFor('the search again', async () =>
        /1 note trouvée/.test(await pageB.locator('#resultat-notes').textContent()));
    await shoot(pageB, 'pratiques');
    await pageA.close();
    await pageB.close();
});

test('a replicated offer named <script>alert(1)</script> renders as text at B', async () => {
    const name = '<script>alert(1)</script> Atelier <img src=x onerror=alert(2)>';
    cli(dirA, 'offer', 'add', '--nom', name, '--services', 'Loisirs et créations numériques',
        '--duree', 'deux heures');
    const pageB = await openPage(B, '#/territoire');
    const scriptsBefore = await pageB.evaluate(() => document.scripts.length);
    const row = pageB.locator('#liste-territoire tbody tr', { hasText: '<script>alert(1)</script>' });
    await row.waitFor({ timeout: DEADLINE_MS });
    assert.match(await row.locator('th').textContent(), /^<script>alert\(1\)<\/script> Atelier <img/);
    // The map marker's accessible name carries it as text too.
    const marker = pageB.locator('svg .marqueur', { has: pageB.locator('title', { hasText: '<script>' }) });
    assert.equal(await marker.count(), 1);
    await marker.focus();
    await pageB.keyboard.press('Enter');
    await pageB.locator('#detail-offre', { hasText: '<script>alert(1)</script>' }).waitFor();
    const injected = await pageB.evaluate(() => ({
        scripts: document.scripts.length,
        alertScripts: [...document.querySelectorAll('script')].filter((s) =>
            s.textContent.includes('alert')).length,
        imgs: document.querySelectorAll('img').length,
    }));
    assert.equal(injected.scripts, scriptsBefore, 'no script element injected');
    assert.equal(injected.alertScripts, 0);
    assert.equal(injected.imgs, 0, 'no img element injected');
    assert.deepEqual(dialogs, [], 'no dialog fired');
    await pageB.close();
});

test('on a non-loopback address the dashboard needs the #jeton= of its URL', async () => {
    const dirC = initNode('Mairie de Gond-Pontouvre', 'Gond-Pontouvre', '16160', '16154', 45.6700,
                          0.1600, '21160154800015');
    const port = await freePort();
    const proc = spawn(BIN, ['--dir', dirC, 'node', '--listen', 'tcp://127.0.0.1:*',
                             '--http', `0.0.0.0:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    proc.log = () => out;
    const url = await waitFor('node C to print its URL', () => {
        if (proc.exitCode !== null)
            throw new Error(`maillage node exited (${proc.exitCode}):\n${out}`);
        const m = /Tableau de bord : (http:\/\/\S+#jeton=([0-9a-f]{64}))/.exec(out);
        return m ? m[1] : null;
    });
    const local = url.replace(/^http:\/\/[^/]+/, `http://127.0.0.1:${port}`);
    const page = await context.newPage();
    // Without the token: a clear message, no data.
    await page.goto(local.replace(/#.*$/, ''));
    await page.locator('main .message.erreur').waitFor({ timeout: DEADLINE_MS });
    assert.match(await page.locator('main').textContent(), /jeton/);
    // With it: the dashboard works, and the token leaves the address bar.
    await page.goto(local);
    await page.locator('#titre-page', { hasText: 'Mon offre' }).waitFor({ timeout: DEADLINE_MS });
    await page.locator('#nom-noeud', { hasText: 'Mairie de Gond-Pontouvre' }).waitFor();
    assert.doesNotMatch(page.url(), /jeton/);
    // A write (the profile form) carries the token and the CSRF header.
    await page.locator('#form-fiche summary').click();
    await page.locator('#form-fiche [data-champ="telephone"] input').fill('+33545000000');
    await page.getByRole('button', { name: 'Enregistrer la fiche' }).click();
    await page.locator('#form-fiche .message.ok').waitFor({ timeout: DEADLINE_MS });
    assert.match(cli(dirC, 'profile', 'show'), /\+33545000000/);
    // A refused value: the CLI's French message, next to the form.
    await page.locator('#form-fiche [data-champ="code_postal"] input').fill('16');
    await page.getByRole('button', { name: 'Enregistrer la fiche' }).click();
    await page.locator('#form-fiche .message.erreur').waitFor({ timeout: DEADLINE_MS });
    assert.match(await page.locator('#form-fiche .message.erreur').textContent(), /code_postal/);
    assert.match(cli(dirC, 'profile', 'show'), /16160/);
    await page.close();
    proc.kill('SIGTERM');
});

test('screenshots of every page, desktop and phone width', async () => {
    // A realistic territory for the pictures: the bundled Charente sample.
    const sample = path.join(DATA, 'charente-2023-07.json');
    if (fs.existsSync(sample)) {
        cli(dirA, 'import', sample);
        const page = await openPage(A, '#/territoire');
        await waitFor('the imported offers at A', async () =>
            /^1\d\d offres/.test(await page.locator('#resultat-territoire').textContent()));
        await page.close();
    }
    const pages = ['offre', 'territoire', 'coordination', 'evenements', 'pratiques', 'reseau'];
    for (const [width, suffix] of [[1280, ''], [360, '-telephone']]) {
        for (const p of pages) {
            const page = await openPage(A, '#/' + p, width);
            if (p === 'coordination') {
                await page.locator('#analyse-diagnostic summary').click();
                await page.locator('#analyse-diagnostic .diagnostic').waitFor({ timeout: DEADLINE_MS });
                await page.locator('#analyse-diagnostic summary').scrollIntoViewIfNeeded();
                await page.evaluate(() =>
                    document.getElementById('analyse-diagnostic').scrollIntoView());
            }
            if (p === 'pratiques') {
                await page.getByLabel('Chercher dans les notes').fill('aidants');
                await page.getByRole('button', { name: 'Chercher' }).click();
                await page.locator('#liste-notes mark').first().waitFor({ timeout: DEADLINE_MS });
            }
            if (p === 'reseau')
                await page.locator('#liste-pairs table').waitFor({ timeout: DEADLINE_MS });
            if (p === 'territoire')
                await page.locator('svg.carte').waitFor({ timeout: DEADLINE_MS });
            // Every form control has a label (or an accessible name).
            const unlabelled = await page.evaluate(() =>
                [...document.querySelectorAll('input, select, textarea')]
                    .filter((e) => e.type !== 'hidden' && !e.labels.length &&
                            !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
                    .map((e) => e.outerHTML.slice(0, 80)));
            assert.deepEqual(unlabelled, [], `controls without a label on page ${p}`);
            // Nothing wider than the screen on a phone.
            if (width === 360) {
                const overflow = await page.evaluate(() =>
                    document.documentElement.scrollWidth - window.innerWidth);
                assert.ok(overflow <= 0, `page ${p} is ${overflow} px wider than a 360 px phone`);
            }
            await shoot(page, p + suffix);
            await page.close();
        }
    }
    assert.deepEqual(pageErrors, [], 'no JavaScript error');
    assert.deepEqual(consoleErrors.filter((m) => !/status of 4\d\d/.test(m)), [],
                     'no console error (CSP violations included)');
});

test('analyses and calendars download as files (CSV, GeoJSON, iCalendar)', async () => {
    const page = await openPage(A, '#/coordination');
    await page.locator('#analyse-overlaps summary').click();
    const section = page.locator('#analyse-overlaps');
    await section.locator('table').waitFor({ timeout: DEADLINE_MS });
    const read = async (download) => fs.readFileSync(await download.path(), 'utf8');
    let [dl] = await Promise.all([page.waitForEvent('download'),
                                  section.getByRole('button', { name: 'Télécharger en CSV' }).click()]);
    assert.equal(dl.suggestedFilename(), 'maillage-overlaps.csv');
    const csv = await read(dl);
    assert.ok(csv.split('\n').length > 2, 'the CSV has a header and rows');
    [dl] = await Promise.all([page.waitForEvent('download'),
                              section.getByRole('button', { name: 'Télécharger en GeoJSON' }).click()]);
    const geo = JSON.parse(await read(dl));
    assert.equal(geo.type, 'FeatureCollection');
    assert.ok(geo.features.length > 0);
    await page.goto(A.url.replace(/#.*$/, '') + '#/evenements');
    await page.locator('#mes-evenements .carte').first().waitFor({ timeout: DEADLINE_MS });
    [dl] = await Promise.all([page.waitForEvent('download'),
                              page.getByRole('button', { name: 'Télécharger l\'agenda (.ics)' }).click()]);
    const ics = await read(dl);
    assert.match(ics, /^BEGIN:VCALENDAR/);
    assert.match(ics, /SUMMARY:Café numérique des aidants/);
    await page.close();
});

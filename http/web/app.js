// Playhead web page: polls the JSON API, adds torrents, plays a file in <video> and reports play/pause to the
// server (which pauses the download when TORRENT_PAUSE_ON_VIDEO_PAUSE is on), and draws the piece map live.
'use strict';

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem('playheadToken') || '';
let selected = null;       // info-hash of the torrent shown in the detail view
let playing = null;        // {hash, index} of the file in the player
let lastDetail = null;

async function api(method, path, body, contentType) {
  const headers = {};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
  const res = await fetch(path, { method, headers, body });
  if (res.status === 401) {
    const t = prompt('This Playhead needs its API token:');
    if (t) { token = t; localStorage.setItem('playheadToken', t); return api(method, path, body, contentType); }
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!res.ok) throw new Error((data && data.error) || res.statusText);
  return data;
}

function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
const fmtRate = (n) => fmtBytes(n) + '/s';
function bar(p) {
  const d = document.createElement('span');
  d.className = 'bar';
  d.innerHTML = '<div></div>';
  d.firstChild.style.width = (Math.max(0, Math.min(1, p)) * 100).toFixed(1) + '%';
  d.title = (p * 100).toFixed(1) + '%';
  return d;
}
function cell(row, content) {
  const td = row.insertCell();
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  return td;
}

async function refreshList() {
  let list;
  try {
    list = await api('GET', '/api/torrents');
    $('status').textContent = '';
  } catch (e) {
    $('status').textContent = 'server unreachable: ' + e.message;
    return;
  }
  const body = $('torrents').tBodies[0];
  body.replaceChildren();
  $('empty').hidden = list.length > 0;
  for (const t of list) {
    const row = body.insertRow();
    if (t.infoHash === selected) row.className = 'selected';
    const name = document.createElement('a');
    name.href = '#' + t.infoHash;
    name.textContent = t.name || t.infoHash;
    name.onclick = (ev) => { ev.preventDefault(); select(t.infoHash); };
    cell(row, name);
    cell(row, t.state);
    cell(row, bar(t.progress));
    cell(row, fmtRate(t.downloadRate));
    cell(row, fmtRate(t.uploadRate));
    cell(row, String(t.peers));
    cell(row, fmtBytes(t.memoryBytes));
    const rm = document.createElement('button');
    rm.className = 'secondary';
    rm.textContent = 'Remove';
    rm.onclick = async () => {
      if (!confirm('Remove ' + (t.name || t.infoHash) + '?')) return;
      await api('DELETE', '/api/torrents/' + t.infoHash).catch((e) => alert(e.message));
      if (selected === t.infoHash) { selected = null; $('detail').hidden = true; stopPlayer(); }
      refreshList();
    };
    cell(row, rm);
  }
  if (!selected && list.length === 1) select(list[0].infoHash);
}

function select(hash) {
  selected = hash;
  $('detail').hidden = false;
  refreshDetail();
  refreshList();
}

function stopPlayer() {
  const v = $('player');
  v.pause();
  v.removeAttribute('src');
  v.load();
  playing = null;
}

async function play(hash, file) {
  try {
    await api('POST', `/api/torrents/${hash}/files/${file.index}/prioritize`);
  } catch (e) {
    alert(e.message);
    return;
  }
  const v = $('player');
  playing = { hash, index: file.index };
  v.src = file.streamUrl;
  v.play().catch(() => {});  // autoplay may be refused; the controls still work
}

async function refreshDetail() {
  if (!selected) return;
  let d;
  try { d = await api('GET', '/api/torrents/' + selected); } catch (e) { return; }
  lastDetail = d;
  $('detail-name').textContent = (d.name || d.infoHash) + ' — ' + d.state;
  const body = $('files').tBodies[0];
  body.replaceChildren();
  for (const f of d.files) {
    const row = body.insertRow();
    const b = document.createElement('button');
    const isPlaying = playing && playing.hash === d.infoHash && playing.index === f.index;
    b.textContent = isPlaying ? 'Playing' : 'Play';
    b.disabled = isPlaying;
    b.onclick = () => play(d.infoHash, f);
    cell(row, b);
    cell(row, f.path);
    cell(row, fmtBytes(f.length));
    cell(row, bar(f.progress));
  }
  $('peers').textContent = d.peers + ' peers' + (d.peerList && d.peerList.length
    ? ': ' + d.peerList.map((p) => p.address + (p.client ? ' (' + p.client + ')' : '')).join(', ') : '');
  drawPieceMap();
}

// Pieces had in green, the readahead window in amber, playheads in red; below it what the <video> has buffered.
function drawPieceMap() {
  const d = lastDetail;
  const c = $('piece-map');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  if (!d || !d.pieces) return;
  const n = d.pieces.length;
  const w = c.width / Math.max(1, n);
  for (const win of d.window || []) {
    ctx.fillStyle = '#d29922';
    ctx.fillRect(win.first * w, 0, (win.last - win.first + 1) * w, c.height);
  }
  ctx.fillStyle = '#3fb950';
  for (let i = 0; i < n; i++) {
    if (d.pieces[i] === '1') ctx.fillRect(i * w, 4, Math.max(w, 1), c.height - 8);
  }
  ctx.fillStyle = '#f85149';
  for (const p of d.playheads || []) ctx.fillRect(p.piece * w, 0, Math.max(2, w), c.height);

  const b = $('buffer-map');
  const bctx = b.getContext('2d');
  bctx.clearRect(0, 0, b.width, b.height);
  const v = $('player');
  if (v.duration > 0 && isFinite(v.duration)) {
    bctx.fillStyle = '#58a6ff';
    for (let i = 0; i < v.buffered.length; i++) {
      const s = v.buffered.start(i) / v.duration, e = v.buffered.end(i) / v.duration;
      bctx.fillRect(s * b.width, 0, (e - s) * b.width, b.height);
    }
    bctx.fillStyle = '#f85149';
    bctx.fillRect((v.currentTime / v.duration) * b.width, 0, 2, b.height);
  }
}

// The player's own play/pause events drive the download (DESIGN.md "Pause").
$('player').addEventListener('play', () => {
  if (playing) api('POST', `/api/torrents/${playing.hash}/play`).catch(() => {});
});
$('player').addEventListener('pause', () => {
  if (playing) api('POST', `/api/torrents/${playing.hash}/pause`).catch(() => {});
});
$('player').addEventListener('progress', drawPieceMap);
$('player').addEventListener('timeupdate', drawPieceMap);

$('add-magnet').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('add-error').textContent = '';
  const magnet = $('magnet').value.trim();
  if (!magnet) return;
  try {
    const t = await api('POST', '/api/torrents', JSON.stringify({ magnet }));
    $('magnet').value = '';
    select(t.infoHash);
  } catch (e) {
    $('add-error').textContent = e.message;
  }
});

$('torrent-file').addEventListener('change', async (ev) => {
  const file = ev.target.files[0];
  ev.target.value = '';
  if (!file) return;
  $('add-error').textContent = '';
  try {
    const t = await api('POST', '/api/torrents', await file.arrayBuffer(), 'application/x-bittorrent');
    select(t.infoHash);
  } catch (e) {
    $('add-error').textContent = e.message;
  }
});

if (location.hash.length === 41) selected = location.hash.slice(1);
refreshList();
if (selected) select(selected);
setInterval(refreshList, 1000);
setInterval(refreshDetail, 1000);

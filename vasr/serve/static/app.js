// vasr's page: live recognition from the microphone over /v1/stream, file upload to
// /v1/audio/transcriptions, hot words for both, and the result as SRT, WebVTT or text.
// Plain browser JavaScript, no build step; every URL is relative to the page.
"use strict";

const STREAM_RATE = 16000;          // Hz: the worklet's output and the rate declared to the server
const WORKLET = "recorder-worklet.js";

const $ = (id) => document.getElementById(id);

// The result shown: a list of segments {start, end, text, words: [{word, start, end}]}, from the
// stream's finals or from an upload's verbose_json; the downloads are built from it.
const result = { segments: [], name: "vasr" };
// The live session, while recording or finishing: {ws, context, media, node, pcm: [Int16Array]}
let live = null;
let lastRecording = null;           // Int16Array at STREAM_RATE of the last recording (the audio sent)
// The recording kept for the WAV download is capped (16 kHz int16: 57.6 MB per half hour); the
// stream and its transcript go on past it, the download then holds the first KEEP_MAX_S.
const KEEP_MAX_S = 1800;

// ---------- helpers ----------

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function hotwordLines() {
  return $("hotwords").value.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
}

function apiKey() {
  return $("api-key").value.trim();
}

function roundHalfEven(x) {
  // Python's round(): the subtitles' milliseconds match the server's srt/vtt exactly
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clock(seconds, separator) {
  // HH:MM:SS<separator>mmm, the time format of SRT (",") and WebVTT (".")
  const ms = Math.max(0, roundHalfEven(seconds * 1000));
  const pad = (n, w) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3600000), 2)}:${pad(Math.floor(ms / 60000) % 60, 2)}:` +
         `${pad(Math.floor(ms / 1000) % 60, 2)}${separator}${pad(ms % 1000, 3)}`;
}

function shortTime(seconds) {
  const s = Math.max(0, seconds);
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(2).padStart(5, "0")}`;
}

// ---------- the result ----------

function clearResult(name) {
  result.segments = [];
  result.name = name;
  $("finals").replaceChildren();
  $("partial").textContent = "";
  $("words").tBodies[0].replaceChildren();
  updateDownloads();
}

function addSegment(segment) {
  const text = (segment.text || "").trim();
  if (!text) return;
  const words = (segment.words || []).map((w) => ({ word: w.word, start: w.start, end: w.end }));
  const seg = { start: segment.start, end: segment.end, text, words };
  result.segments.push(seg);

  const li = document.createElement("li");
  li.className = "final";
  li.dataset.start = seg.start;
  li.dataset.end = seg.end;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = `${shortTime(seg.start)} – ${shortTime(seg.end)}`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(time, body);
  $("finals").append(li);

  const tbody = $("words").tBodies[0];
  for (const w of words) {
    const row = tbody.insertRow();
    row.insertCell().textContent = w.word;
    row.insertCell().textContent = w.start.toFixed(2);
    row.insertCell().textContent = w.end.toFixed(2);
  }
  updateDownloads();
}

// Subtitle cues, by the rule of vasr.runtime.formats.cues (the server's srt and vtt): within a
// segment, a cue ends before a pause longer than CUE_GAP_S, a span over CUE_MAX_S or CUE_MAX_WORDS words.
const CUE_MAX_S = 6.0;
const CUE_MAX_WORDS = 14;
const CUE_GAP_S = 0.8;

function cues() {
  const out = [];
  const cue = (group) => out.push([group[0].start, group[group.length - 1].end, group.map((w) => w.word).join(" ")]);
  for (const seg of result.segments) {
    if (!seg.words.length) {                 // a segment without word times is one cue
      out.push([seg.start, seg.end, seg.text]);
      continue;
    }
    let group = [];
    for (const w of seg.words) {
      if (group.length && (w.start - group[group.length - 1].end > CUE_GAP_S || w.end - group[0].start > CUE_MAX_S
                           || group.length >= CUE_MAX_WORDS)) {
        cue(group);
        group = [];
      }
      group.push(w);
    }
    if (group.length) cue(group);
  }
  return out;
}

function formats() {
  // the result as {srt, vtt, txt}, the same text as the server's response_format srt, vtt and text
  const list = cues();
  const srt = list.map(([a, b, text], i) => `${i + 1}\n${clock(a, ",")} --> ${clock(b, ",")}\n${text}\n\n`).join("");
  const vtt = "WEBVTT\n\n" + list.map(([a, b, text]) => `${clock(a, ".")} --> ${clock(b, ".")}\n${text}\n\n`).join("");
  const txt = result.segments.map((s) => s.text).join(" ") + "\n";
  return { srt, vtt, txt };
}

function updateDownloads() {
  const empty = result.segments.length === 0;
  for (const id of ["download-srt", "download-vtt", "download-txt"]) $(id).disabled = empty;
  $("download-wav").disabled = !lastRecording || live !== null;
}

function save(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function download(kind) {
  const types = { srt: "application/x-subrip", vtt: "text/vtt", txt: "text/plain" };
  save(new Blob([formats()[kind]], { type: `${types[kind]};charset=utf-8` }), `${result.name}.${kind}`);
}

function wavBlob(pcm, rate) {
  // 16-bit mono PCM WAV
  const header = new DataView(new ArrayBuffer(44));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) header.setUint8(at + i, s.charCodeAt(i)); };
  text(0, "RIFF"); header.setUint32(4, 36 + pcm.byteLength, true); text(8, "WAVE");
  text(12, "fmt "); header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
  header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true); header.setUint16(32, 2, true);
  header.setUint16(34, 16, true); text(36, "data"); header.setUint32(40, pcm.byteLength, true);
  return new Blob([header.buffer, pcm.buffer], { type: "audio/wav" });
}

function joinPcm(parts) {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// ---------- live: microphone -> AudioWorklet (16 kHz s16le) -> WebSocket ----------

function streamUrl() {
  const url = new URL("v1/stream", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (apiKey()) url.searchParams.set("api_key", apiKey());
  return url.href;
}

function setRecording(on) {
  $("record").disabled = on;
  $("record").classList.toggle("recording", on);
  $("upload").disabled = on;
  $("stop").disabled = !on;
}

async function record() {
  if (live) return;
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    setStatus("Trình duyệt không hỗ trợ ghi âm · this browser cannot record (needs https or localhost)", true);
    return;
  }
  clearResult("vasr-recording");
  lastRecording = null;
  setRecording(true);
  const session = { ws: null, context: null, media: null, node: null, pcm: [], kept: 0, ending: false, done: false };
  live = session;
  try {
    setStatus("Đang kết nối… · connecting");
    session.ws = await openStream(session);
    session.media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    session.context = new AudioContext();
    await session.context.audioWorklet.addModule(WORKLET);
    if (session.ending) {                  // stopped while starting: nothing was recorded
      session.ws.send(JSON.stringify({ type: "end" }));
      releaseAudio(session);
      return;
    }
    session.node = new AudioWorkletNode(session.context, "vasr-recorder", { numberOfOutputs: 1 });
    session.node.port.onmessage = (e) => onWorkletMessage(session, e.data);
    session.context.createMediaStreamSource(session.media).connect(session.node);
    session.node.connect(session.context.destination);      // the node outputs silence; this keeps it pulled
    if (session.context.state === "suspended") await session.context.resume();
    setStatus(`Đang ghi âm… · recording (${session.context.sampleRate} Hz → ${STREAM_RATE} Hz)`);
  } catch (err) {
    fail(session, err && err.message ? err.message : String(err));
  }
}

function openStream(session) {
  // resolves with the socket once the server has answered "ready"
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(streamUrl());
    ws.binaryType = "arraybuffer";
    let ready = false;
    ws.onopen = () => {
      const start = { type: "start", sample_rate: STREAM_RATE, format: "s16le" };
      const hotwords = hotwordLines();
      if (hotwords.length) start.hotwords = hotwords;
      ws.send(JSON.stringify(start));
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "ready" && !ready) {
        ready = true;
        resolve(ws);
      } else if (msg.type === "error" && !ready) {
        reject(new Error(msg.message));
      } else {
        onServerMessage(session, msg);
      }
    };
    ws.onerror = () => { if (!ready) reject(new Error("WebSocket connection failed")); };
    ws.onclose = (e) => {
      if (!ready) reject(new Error(`the server closed the connection (${e.code}${e.reason ? ": " + e.reason : ""})`));
      else onClose(session, e);
    };
  });
}

function onWorkletMessage(session, data) {
  if (data instanceof ArrayBuffer) {
    const samples = new Int16Array(data);
    if (session.kept + samples.length <= KEEP_MAX_S * STREAM_RATE) {
      session.pcm.push(samples);
      session.kept += samples.length;
    }
    if (session.ws.readyState === WebSocket.OPEN) session.ws.send(data);
  } else if (data && data.type === "flushed") {
    // every sample is sent; the server answers with what is left, then "done"
    if (session.ws.readyState === WebSocket.OPEN) session.ws.send(JSON.stringify({ type: "end" }));
    releaseAudio(session);
  }
}

function onServerMessage(session, msg) {
  if (msg.type === "partial") {
    $("partial").textContent = msg.text;
  } else if (msg.type === "final") {
    $("partial").textContent = "";
    addSegment(msg);
  } else if (msg.type === "error") {
    setStatus(`Lỗi · error: ${msg.message}`, true);
  } else if (msg.type === "done") {
    session.done = true;
    $("partial").textContent = "";
    const capped = session.kept >= KEEP_MAX_S * STREAM_RATE - STREAM_RATE ? ` (WAV: the first ${KEEP_MAX_S / 60} min)` : "";
    setStatus(`Xong · done: ${result.segments.length} segment(s)${capped}`);
  }
}

function onClose(session, e) {
  releaseAudio(session);
  if (session.pcm.length) lastRecording = joinPcm(session.pcm);
  if (!session.done && !$("status").classList.contains("error")) {
    setStatus(`Mất kết nối · connection closed (${e.code}${e.reason ? ": " + e.reason : ""})`, true);
  }
  if (live === session) live = null;
  setRecording(false);
  updateDownloads();
}

function releaseAudio(session) {
  if (session.media) session.media.getTracks().forEach((t) => t.stop());
  if (session.context && session.context.state !== "closed") session.context.close();
  session.media = null;
  session.context = null;
}

function stop() {
  const session = live;
  if (!session || session.ending) return;
  session.ending = true;
  $("stop").disabled = true;
  setStatus("Đang hoàn tất… · finishing");
  if (session.node) {
    session.node.port.postMessage({ type: "flush" });   // the worklet answers "flushed" after its last samples
  }   // else record() is still starting: it sends "end" when it gets there
}

function fail(session, message) {
  setStatus(`Lỗi · error: ${message}`, true);
  releaseAudio(session);
  if (session.ws && session.ws.readyState <= WebSocket.OPEN) session.ws.close();
  if (live === session) live = null;
  setRecording(false);
}

// ---------- upload: POST /v1/audio/transcriptions (OpenAI's API, verbose_json) ----------

async function upload() {
  const file = $("file").files[0];
  if (!file) {
    setStatus("Chọn một tệp âm thanh trước · choose an audio file first", true);
    return;
  }
  clearResult(file.name.replace(/\.[^.]*$/, "") || "vasr");
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", "vasr");
  form.append("response_format", "verbose_json");
  form.append("timestamp_granularities[]", "word");
  form.append("timestamp_granularities[]", "segment");
  const hotwords = hotwordLines();
  if (hotwords.length) form.append("hotwords", hotwords.join("\n"));
  const headers = apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {};

  $("upload").disabled = true;
  $("record").disabled = true;
  setStatus(`Đang nhận dạng ${file.name}… · transcribing`);
  try {
    const response = await fetch("v1/audio/transcriptions", { method: "POST", body: form, headers });
    const body = await response.text();
    if (!response.ok) throw new Error(errorMessage(response.status, body));
    showTranscription(JSON.parse(body));
    setStatus(`Xong · done: ${file.name}`);
  } catch (err) {
    setStatus(`Lỗi · error: ${err.message}`, true);
  } finally {
    $("upload").disabled = false;
    $("record").disabled = false;
  }
}

function errorMessage(status, body) {
  try {
    const parsed = JSON.parse(body);
    const message = (parsed.error && parsed.error.message) || parsed.detail || parsed.message;
    if (message) return `${status}: ${message}`;
  } catch (_) { /* not JSON */ }
  return `${status}: ${body.slice(0, 300)}`;
}

function showTranscription(verbose) {
  // OpenAI's verbose_json: {text, duration, segments: [{start, end, text}], words: [{word, start, end}]}
  const words = verbose.words || [];
  const segments = verbose.segments && verbose.segments.length ? verbose.segments
    : (verbose.text ? [{ start: 0, end: verbose.duration || 0, text: verbose.text }] : []);
  // each word goes to the last segment that starts before its middle
  const owned = segments.map(() => []);
  for (const w of words) {
    const middle = (w.start + w.end) / 2;
    let i = 0;
    while (i + 1 < segments.length && segments[i + 1].start <= middle) i++;
    if (segments.length) owned[i].push(w);
  }
  segments.forEach((seg, i) => addSegment({ start: seg.start, end: seg.end, text: seg.text, words: owned[i] }));
}

// ---------- wiring ----------

document.addEventListener("DOMContentLoaded", () => {
  $("record").addEventListener("click", record);
  $("stop").addEventListener("click", stop);
  $("upload").addEventListener("click", upload);
  $("download-srt").addEventListener("click", () => download("srt"));
  $("download-vtt").addEventListener("click", () => download("vtt"));
  $("download-txt").addEventListener("click", () => download("txt"));
  $("download-wav").addEventListener("click", () => {
    if (lastRecording) save(wavBlob(lastRecording, STREAM_RATE), `${result.name}.wav`);
  });
  updateDownloads();
});

// for tests and the console: the result, its formats and the audio last sent
window.vasrPage = {
  segments: () => result.segments,
  formats,
  recording: () => (lastRecording ? Array.from(lastRecording) : (live ? Array.from(joinPcm(live.pcm)) : [])),
  contextRate: () => (live && live.context ? live.context.sampleRate : null),
};

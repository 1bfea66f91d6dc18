"use strict";
// fer-annotate's page: plain JavaScript, no libraries. The webcam goes to /api/live as JPEG frames, one in flight
// at a time; uploads go to /api/jobs and are followed until their annotated video and timeline can be shown.

const EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const COLOURS = { angry: "#E53935", disgust: "#43A047", fear: "#8E24AA", happy: "#FDD835", sad: "#1E88E5",
                  surprise: "#FB8C00", neutral: "#9E9E9E" };
const $ = (id) => document.getElementById(id);

document.getElementById("legend").innerHTML = EMOTIONS.map(
  (e) => `<span><i style="background:${COLOURS[e]}"></i>${e}</span>`).join("");

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tab")) other.classList.toggle("active", other === tab);
    for (const view of document.querySelectorAll(".view")) view.classList.toggle("hidden", view.id !== "view-" + tab.dataset.view);
    if (tab.dataset.view === "jobs") refreshJobs();
    if (tab.dataset.view === "cameras") pollCameras();
  });
}

// ---------------------------------------------------------------- webcam

const live = { stream: null, socket: null, inFlight: false, sent: 0, answered: 0, skipped: 0, timer: null,
               records: [], history: new Map(), lastAnswer: null, latencies: [] };
const FRAME_INTERVAL_MS = 80;   // about 12 frames a second at most
const SEND_WIDTH = 640;         // frames are downscaled to this width before sending
const HISTORY_SECONDS = 30;

$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);
$("record").addEventListener("change", () => {
  if ($("record").checked) live.records = [];
  $("record-download").disabled = !$("record").checked && live.records.length === 0;
});
$("record-download").addEventListener("click", downloadRecording);

async function startCamera() {
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
  } catch (error) {
    $("live-status").textContent = "No camera: " + error.message;
    return;
  }
  const video = $("camera");
  video.srcObject = live.stream;
  await video.play();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  live.socket = new WebSocket(`${scheme}//${location.host}/api/live`);
  live.socket.binaryType = "arraybuffer";
  live.socket.onmessage = (event) => onLiveMessage(JSON.parse(event.data));
  live.socket.onclose = () => { live.inFlight = false; if (live.stream) $("live-status").textContent = "Connection closed."; };
  live.socket.onopen = () => { live.timer = setInterval(sendFrame, FRAME_INTERVAL_MS); };
  $("camera-start").disabled = true;
  $("camera-stop").disabled = false;
  $("live-status").textContent = "Connecting...";
}

function stopCamera() {
  clearInterval(live.timer);
  if (live.socket) live.socket.close();
  if (live.stream) for (const track of live.stream.getTracks()) track.stop();
  live.stream = null;
  live.socket = null;
  live.inFlight = false;
  $("camera-start").disabled = false;
  $("camera-stop").disabled = true;
  $("live-status").textContent = "Camera off.";
  const overlay = $("overlay");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
}

const sendCanvas = document.createElement("canvas");
function sendFrame() {
  const video = $("camera");
  if (!live.socket || live.socket.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  // Backpressure: one frame in flight; frames captured meanwhile are skipped, never queued.
  if (live.inFlight) { live.skipped++; return; }
  const scale = Math.min(1, SEND_WIDTH / video.videoWidth);
  sendCanvas.width = Math.round(video.videoWidth * scale);
  sendCanvas.height = Math.round(video.videoHeight * scale);
  sendCanvas.getContext("2d").drawImage(video, 0, 0, sendCanvas.width, sendCanvas.height);
  live.inFlight = true;
  const sentAt = performance.now();
  sendCanvas.toBlob(async (blob) => {
    if (!blob || !live.socket || live.socket.readyState !== WebSocket.OPEN) { live.inFlight = false; return; }
    live.sentAt = sentAt;
    live.socket.send(await blob.arrayBuffer());
    live.sent++;
  }, "image/jpeg", 0.8);
}

function onLiveMessage(message) {
  live.inFlight = false;
  if (message.type === "error") { $("live-status").textContent = "Server: " + message.message; return; }
  if (message.type !== "frame") return;
  live.answered++;
  const latency = performance.now() - live.sentAt;
  live.latencies.push(latency);
  if (live.latencies.length > 30) live.latencies.shift();
  live.lastAnswer = message;
  $("live-faces").textContent = JSON.stringify(message.faces);
  drawOverlay(message);
  const now = message.time_s;
  for (const face of message.faces) {
    if (!face.probabilities) continue;
    if (!live.history.has(face.id)) live.history.set(face.id, []);
    live.history.get(face.id).push({ t: now, p: face.probabilities });
    if ($("record").checked) live.records.push({ time: now, face });
  }
  if ($("record").checked && message.faces.length === 0) live.records.push({ time: now, face: null });
  for (const [id, points] of live.history) {
    while (points.length && now - points[0].t > HISTORY_SECONDS) points.shift();
    if (!points.length) live.history.delete(id);
  }
  drawLiveCharts(now);
  const mean = live.latencies.reduce((a, b) => a + b, 0) / live.latencies.length;
  $("live-status").textContent = `${message.faces.length} face(s) · ${mean.toFixed(0)} ms round trip · ` +
    `analysis ${message.timing ? message.timing.analysis_ms.toFixed(0) : "?"} ms · ${live.skipped} frames skipped while busy`;
  $("record-download").disabled = live.records.length === 0;
}

function drawOverlay(message) {
  const overlay = $("overlay"), video = $("camera");
  overlay.width = video.clientWidth;
  overlay.height = video.clientHeight;
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  const sx = overlay.width / message.width, sy = overlay.height / message.height;
  context.lineWidth = 3;
  context.font = "bold 16px system-ui, sans-serif";
  for (const face of message.faces) {
    const [x, y, w, h] = face.box;
    const colour = face.emotion ? COLOURS[face.emotion] : "#ffffff";
    context.strokeStyle = colour;
    context.strokeRect(x * sx, y * sy, w * sx, h * sy);
    const label = face.emotion ? `#${face.id} ${face.emotion} ${(face.confidence * 100).toFixed(0)}%` : `#${face.id}`;
    const width = context.measureText(label).width + 10;
    context.fillStyle = colour;
    context.fillRect(x * sx, Math.max(0, y * sy - 22), width, 22);
    context.fillStyle = face.emotion === "happy" || !face.emotion ? "#000" : "#fff";
    context.fillText(label, x * sx + 5, Math.max(16, y * sy - 6));
  }
}

function drawLiveCharts(now) {
  const container = $("live-charts");
  const wanted = new Set([...live.history.keys()].map((id) => "chart-" + id));
  for (const child of [...container.children]) if (!wanted.has(child.id)) child.remove();
  for (const [id, points] of live.history) {
    let box = document.getElementById("chart-" + id);
    if (!box) {
      box = document.createElement("div");
      box.className = "face-chart";
      box.id = "chart-" + id;
      box.innerHTML = `<h3>Face #${id}</h3><canvas width="320" height="110"></canvas>`;
      container.appendChild(box);
    }
    const canvas = box.querySelector("canvas");
    drawStacked(canvas.getContext("2d"), 0, 0, canvas.width, canvas.height,
                points.map((point) => ({ t: point.t, p: EMOTIONS.map((e) => point.p[e]) })), now - HISTORY_SECONDS, now);
  }
}

/// Stacked areas of the seven probabilities over [t0, t1], in a lane at (x, y, w, h).
function drawStacked(context, x, y, w, h, points, t0, t1) {
  context.clearRect(x, y, w, h);
  if (points.length < 2) return;
  const px = (t) => x + ((t - t0) / Math.max(1e-6, t1 - t0)) * w;
  for (let band = EMOTIONS.length - 1; band >= 0; band--) {
    context.beginPath();
    points.forEach((point, index) => {
      const top = point.p.slice(0, band + 1).reduce((a, b) => a + b, 0);
      const py = y + h - top * h;
      if (index === 0) context.moveTo(px(point.t), py); else context.lineTo(px(point.t), py);
    });
    context.lineTo(px(points[points.length - 1].t), y + h);
    context.lineTo(px(points[0].t), y + h);
    context.closePath();
    context.fillStyle = COLOURS[EMOTIONS[band]];
    context.fill();
  }
}

function downloadRecording() {
  const header = ["time_s", "face_id", "x", "y", "w", "h", ...EMOTIONS, "emotion", "confidence"];
  const rows = [header.join(",")];
  for (const record of live.records) {
    const face = record.face;
    if (!face) { rows.push([record.time.toFixed(3), "", "", "", "", "", ...EMOTIONS.map(() => ""), "", ""].join(",")); continue; }
    rows.push([record.time.toFixed(3), face.id, ...face.box.map((v) => v.toFixed(1)),
               ...EMOTIONS.map((e) => face.probabilities[e].toFixed(5)), face.emotion, face.confidence.toFixed(5)].join(","));
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
  link.download = `webcam-${new Date().toISOString().replace(/[:.]/g, "-")}.csv`;
  link.click();
}

// ---------------------------------------------------------------- uploads and jobs

let openJob = null;
let pollTimer = null;

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  const query = new URLSearchParams({ name: file.name, detector: $("opt-detector").value,
                                      detect_every: $("opt-detect-every").value, smoothing: $("opt-smoothing").value });
  const request = new XMLHttpRequest();
  request.open("POST", "/api/jobs?" + query.toString());
  const progress = $("upload-progress");
  progress.classList.remove("hidden");
  request.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = e.loaded / e.total; };
  request.onload = () => {
    progress.classList.add("hidden");
    let answer = {};
    try { answer = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
    if (request.status === 201) {
      $("upload-status").textContent = `Uploaded ${file.name}; analysing.`;
      openJob = answer.id;
      refreshJobs();
    } else {
      $("upload-status").textContent = `Refused (${request.status}): ${answer.error || request.statusText}`;
    }
  };
  request.onerror = () => { progress.classList.add("hidden"); $("upload-status").textContent = "Upload failed."; };
  $("upload-status").textContent = "Uploading...";
  request.send(file);
});

async function refreshJobs() {
  clearTimeout(pollTimer);
  const response = await fetch("/api/jobs");
  if (!response.ok) return;
  const jobs = await response.json();
  const body = $("jobs").querySelector("tbody");
  body.innerHTML = "";
  for (const job of jobs) {
    const row = document.createElement("tr");
    row.dataset.job = job.id;
    row.dataset.state = job.state;
    const name = document.createElement("td");
    name.textContent = job.name;
    const state = document.createElement("td");
    state.textContent = job.state + (job.error ? ` (${job.error})` : "");
    const progress = document.createElement("td");
    progress.innerHTML = `<progress max="1" value="${job.progress}"></progress>`;
    const actions = document.createElement("td");
    if (job.state !== "queued") actions.appendChild(button("Open", () => { openJob = job.id; showJob(job); }));
    actions.appendChild(button("Delete", async () => {
      await fetch(`/api/jobs/${job.id}`, { method: "DELETE" });
      if (openJob === job.id) { openJob = null; $("job-detail").classList.add("hidden"); }
      refreshJobs();
    }));
    row.append(name, state, progress, actions);
    body.appendChild(row);
    if (job.id === openJob && (job.state === "done" || job.state === "interrupted") && $("job-detail").dataset.job !== job.id) showJob(job);
  }
  if (jobs.some((job) => job.state === "queued" || job.state === "running")) pollTimer = setTimeout(refreshJobs, 1000);
}

function button(text, action) {
  const element = document.createElement("button");
  element.textContent = text;
  element.addEventListener("click", action);
  return element;
}

async function showJob(job) {
  const detail = $("job-detail");
  detail.dataset.job = job.id;
  detail.classList.remove("hidden");
  $("job-title").textContent = `${job.name} (${job.state})`;
  const media = $("job-media");
  media.innerHTML = "";
  let player = null;
  if (job.kind === "image") {
    const image = document.createElement("img");
    image.src = job.files.image;
    image.id = "job-image";
    media.appendChild(image);
  } else {
    player = document.createElement("video");
    player.id = "job-video";
    player.controls = true;
    player.src = job.files.video;
    media.appendChild(player);
  }
  $("job-downloads").innerHTML = Object.entries(job.files)
    .map(([kind, url]) => `<a href="${url}" download>${kind}</a>`).join(" · ");
  const response = await fetch(job.files.timeline);
  if (!response.ok) return;
  drawTimeline(parseTimeline(await response.text()), player);
}

function parseTimeline(text) {
  const lines = text.trim().split("\n");
  const header = lines.shift().split(",");
  const column = (name) => header.indexOf(name);
  const faces = new Map();
  let end = 0;
  for (const line of lines) {
    const fields = line.split(",");
    const t = parseFloat(fields[column("time_s")]);
    end = Math.max(end, t);
    const id = fields[column("face_id")];
    if (!id || fields[column("angry")] === "") continue;
    if (!faces.has(id)) faces.set(id, []);
    faces.get(id).push({ t, p: EMOTIONS.map((e) => parseFloat(fields[column(e)])) });
  }
  return { faces, end };
}

function drawTimeline(timeline, player) {
  const canvas = $("job-timeline");
  canvas.width = canvas.clientWidth;
  const lanes = [...timeline.faces.entries()];
  const laneHeight = 40, labelWidth = 40;
  canvas.height = Math.max(60, lanes.length * (laneHeight + 6) + 10);
  const context = canvas.getContext("2d");
  const end = Math.max(timeline.end, 1e-3);
  const draw = () => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    lanes.forEach(([id, points], lane) => {
      const y = 5 + lane * (laneHeight + 6);
      context.fillStyle = "#333";
      context.font = "12px system-ui, sans-serif";
      context.fillText("#" + id, 4, y + laneHeight / 2 + 4);
      drawStacked(context, labelWidth, y, canvas.width - labelWidth - 5, laneHeight, points, 0, end);
    });
    if (!lanes.length) { context.fillStyle = "#666"; context.fillText("No face found.", 10, 30); }
    if (player) {
      const x = labelWidth + (player.currentTime / end) * (canvas.width - labelWidth - 5);
      context.strokeStyle = "#000";
      context.lineWidth = 2;
      context.beginPath(); context.moveTo(x, 0); context.lineTo(x, canvas.height); context.stroke();
    }
  };
  draw();
  if (player) {
    player.addEventListener("timeupdate", draw);
    canvas.onclick = (event) => {
      const rect = canvas.getBoundingClientRect();
      const fraction = (event.clientX - rect.left - labelWidth) / (rect.width - labelWidth - 5);
      player.currentTime = Math.max(0, Math.min(end, fraction * end));
    };
  }
}

refreshJobs();

// ---------------------------------------------------------------- server cameras

const cameraHistory = new Map();   // camera name -> Map(face id -> points)
let cameraTimer = null;

async function listCameras() {
  const response = await fetch("/api/cameras");
  if (!response.ok) return [];
  const cameras = await response.json();
  $("tab-cameras").classList.toggle("hidden", cameras.length === 0);
  return cameras;
}

async function pollCameras() {
  clearTimeout(cameraTimer);
  if ($("view-cameras").classList.contains("hidden")) return;
  const container = $("cameras");
  for (const camera of await listCameras()) {
    let box = document.getElementById("camera-" + camera.name);
    if (!box) {
      box = document.createElement("div");
      box.className = "camera";
      box.id = "camera-" + camera.name;
      box.innerHTML = `<h2></h2><img alt=""><canvas width="480" height="90"></canvas><p class="hint"></p>`;
      box.querySelector("h2").textContent = camera.name;
      box.querySelector(".hint").innerHTML = `<a href="${camera.timeline}" download>timeline CSV</a>`;
      container.appendChild(box);
    }
    const latest = await (await fetch(camera.latest)).json();
    box.dataset.state = latest.state;
    const record = latest.record;
    if (latest.error) box.querySelector("h2").textContent = `${camera.name} (${latest.state}: ${latest.error})`;
    if (!record) continue;
    box.dataset.faces = JSON.stringify(record.faces);
    const image = box.querySelector("img");
    if (image.dataset.frame !== String(record.frame)) {
      image.dataset.frame = record.frame;
      image.src = `${camera.frame}?frame=${record.frame}`;
    }
    if (!cameraHistory.has(camera.name)) cameraHistory.set(camera.name, new Map());
    const history = cameraHistory.get(camera.name);
    for (const face of record.faces) {
      if (!face.probabilities) continue;
      if (!history.has(face.id)) history.set(face.id, []);
      const points = history.get(face.id);
      if (!points.length || points[points.length - 1].t !== record.time_s) {
        points.push({ t: record.time_s, p: EMOTIONS.map((e) => face.probabilities[e]) });
      }
    }
    const canvas = box.querySelector("canvas");
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    const lanes = [...history.entries()].filter(([, points]) => {
      while (points.length && record.time_s - points[0].t > HISTORY_SECONDS) points.shift();
      return points.length > 0;
    });
    const laneHeight = lanes.length ? canvas.height / lanes.length : canvas.height;
    lanes.forEach(([, points], lane) => drawStacked(context, 0, lane * laneHeight, canvas.width, laneHeight - 2, points,
                                                    record.time_s - HISTORY_SECONDS, record.time_s));
  }
  cameraTimer = setTimeout(pollCameras, 200);
}

listCameras();

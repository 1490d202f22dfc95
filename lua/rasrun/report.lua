-- Run reports, written at the end of every run (also a failed or cancelled
-- one) into the run folder:
--   run.json     every plan, attempt, worker, time and check result
--   report.html  self-contained: a timeline of plans over worker slots and
--                the check results, no external files or scripts
local fs = require "rasrun.fs"
local path = require "rasrun.path"
local json = require "rasrun.json"
local runtime = require "rasrun.runtime"

local M = {}

-- Times as whole UTC seconds. A run's thousands of times share few seconds:
-- each is formatted once per report (memo, one per M.data call).
local memo = {}
local function iso(t)
  if not t then return nil end
  local sec = math.floor(t)
  local s = memo[sec]
  if not s then
    s = os.date("!%Y-%m-%dT%H:%M:%SZ", sec)
    memo[sec] = s
  end
  return s
end

-- A report's checks as plain data: what run.json, and the journal, keep.
local function plain_checks(list)
  local out = json.array()
  for _, c in ipairs(list or {}) do
    out[#out + 1] = { name = c.name, ok = c.ok, detail = c.detail, skipped = c.skipped }
  end
  return out
end
M.plain_checks = plain_checks

-- The signal that stopped a run, as run.json names it.
local SIGNALS = { [1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [15] = "SIGTERM" }

-- The run as plain data (what run.json holds).
function M.data(run)
  memo = {}
  local plans = json.array()
  for _, r in ipairs(run.results) do
    local attempts = json.array()
    for _, h in ipairs(r.history or {}) do
      attempts[#attempts + 1] = { attempt = h.attempt, worker = h.worker, host = h.host,
        status = h.status, reason = h.reason, exit_code = h.exit_code, log = h.log,
        bytes_up = h.bytes_up, bytes_down = h.bytes_down,
        started = iso(h.started), ended = iso(h.ended), launched = iso(h.launched),
        seconds = h.ended and h.started and (h.ended - h.started) or nil }
    end
    plans[#plans + 1] = {
      key = r.key, plan = r.plan, title = r.title, project = r.project and r.project.path,
      status = r.status, attempts = r.attempts, worker = r.worker, host = r.host,
      elapsed = r.elapsed, result = r.result, reason = r.reason, resumed = r.resumed,
      checks = plain_checks(r.checks or (r.report and r.report.checks)), history = attempts,
    }
  end
  local workers = json.array()
  for _, w in ipairs(run.workers) do
    workers[#workers + 1] = { name = w.name, type = w.type, slots = w.slots, tier = w.tier, host = w.host,
      engine = { kind = w.engine.kind, home = w.engine.home, preprocess = w.engine.preprocess } }
  end
  return { run_id = run.id, run_dir = run.run_dir, started = iso(run.started), ended = iso(run.ended),
           seconds = run.ended - run.started, ok = run.ok, counts = run.counts,
           interrupted = run.interrupted and SIGNALS[run.interrupted] or run.interrupted,
           stopped = run.stopped, -- why the recipe stopped it (rasrun.fail)
           workers = workers, plans = plans }
end

local ENTITIES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }
local escaped = {} -- per page: its texts repeat (statuses, workers, checks' details)
local function esc(s)
  s = tostring(s or "")
  local e = escaped[s]
  if e then return e end
  e = s
  if e:find("[\128-\255]") then e = json.utf8(e) end -- Windows-1252 titles: the page is UTF-8
  if e:find('[&<>"]') then e = e:gsub('[&<>"]', ENTITIES) end
  escaped[s] = e
  return e
end

local COLORS = { ok = "#2e7d32", failed = "#c62828", cancelled = "#757575", skipped = "#90a4ae" }

-- Lays attempts out on worker slots: each attempt takes the first lane of
-- its worker that is free when it starts.
local function lanes(run)
  local rows, by_worker = {}, {}
  for _, w in ipairs(run.workers) do
    by_worker[w.name] = { free = {}, rows = {} }
    for s = 1, w.slots do
      local row = { label = ("%s #%d"):format(w.name, s), bars = {} }
      rows[#rows + 1] = row
      by_worker[w.name].rows[s] = row
      by_worker[w.name].free[s] = -math.huge
    end
  end
  local attempts = {}
  for _, r in ipairs(run.results) do
    for _, h in ipairs(r.history or {}) do attempts[#attempts + 1] = { r = r, h = h } end
  end
  -- (a run starts its plans' attempts in their order, retries aside)
  local sorted = true
  for i = 2, #attempts do
    if attempts[i].h.started < attempts[i - 1].h.started then sorted = false break end
  end
  if not sorted then table.sort(attempts, function(a, b) return a.h.started < b.h.started end) end
  for _, a in ipairs(attempts) do
    local bw = by_worker[a.h.worker]
    if bw then
      local lane = 1
      for s = 1, #bw.free do
        if bw.free[s] <= a.h.started then lane = s break end
        if bw.free[s] < bw.free[lane] then lane = s end
      end
      bw.free[lane] = a.h.ended or a.h.started
      local bars = bw.rows[lane].bars
      bars[#bars + 1] = a
    end
  end
  return rows
end

local function timeline(run)
  local rows = lanes(run)
  -- from the first attempt on: a resumed run's reach back before its own start
  local t0 = run.started
  for _, row in ipairs(rows) do
    for _, a in ipairs(row.bars) do t0 = math.min(t0, a.h.started) end
  end
  local t1 = math.max(run.ended, t0 + 1)
  local W, left, rowh = 900, 150, 22
  local h = #rows * rowh + 30
  local x = function(t) return left + (t - t0) / (t1 - t0) * (W - left - 10) end
  local out = { ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">')
    :format(W, h) }
  for i, row in ipairs(rows) do
    local y = (i - 1) * rowh + 4
    out[#out + 1] = ('<text x="4" y="%d">%s</text>'):format(y + 14, esc(row.label))
    out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="#f4f4f4"/>'):format(left, y,
      W - left - 10, rowh - 4)
    for _, a in ipairs(row.bars) do
      local xa, xb = x(a.h.started), x(a.h.ended or a.h.started)
      local status = a.h.status or "failed"
      out[#out + 1] = ('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" stroke="#fff"><title>%s attempt %d: %s, %.1f s%s</title></rect>')
        :format(xa, y, math.max(1.5, xb - xa), rowh - 4, COLORS[status] or "#555", esc(a.r.key),
          a.h.attempt, status, (a.h.ended or a.h.started) - a.h.started,
          a.h.reason and (" - " .. esc(a.h.reason)) or "")
      if xb - xa > 40 then
        out[#out + 1] = ('<text x="%.1f" y="%d" fill="white">%s</text>'):format(xa + 3, y + 13,
          esc(a.r.plan))
      end
    end
  end
  out[#out + 1] = ('<text x="%d" y="%d">0 s</text><text x="%d" y="%d" text-anchor="end">%.1f s</text>')
    :format(left, h - 4, W - 10, h - 4, t1 - t0)
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

-- d: M.data(run) when the caller has it already.
function M.html(run, d)
  d = d or M.data(run)
  escaped = {}
  local rows = {}
  for _, p in ipairs(d.plans) do
    local cks = {}
    for _, c in ipairs(p.checks) do
      cks[#cks + 1] = ('<span class="%s" title="%s">%s</span>'):format(
        c.skipped and "skip" or (c.ok and "pass" or "fail"), esc(c.detail), esc(c.name))
    end
    rows[#rows + 1] = ("<tr><td>%s</td><td>%s</td><td class=\"st %s\">%s</td><td>%s</td><td>%s</td><td>%.1f</td><td>%s</td><td>%s</td></tr>")
      :format(esc(p.key), esc(p.title), esc(p.status), esc(p.status), esc(p.worker or "-"),
        p.attempts or 0, p.elapsed or 0, table.concat(cks, " "), esc(p.reason or p.result or ""))
  end
  local c = d.counts
  local page = ([[<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rasrun run %s</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.st.ok{color:#2e7d32}.st.failed{color:#c62828}.st.cancelled{color:#757575}.st.skipped{color:#607d8b}
.pass,.fail,.skip{padding:1px 5px;border-radius:3px;font-size:11px;color:white}
.pass{background:#2e7d32}.fail{background:#c62828}.skip{background:#9e9e9e}
</style></head><body>
<h1>rasrun run %s</h1>
<p>%s to %s (%.1f s). <b>%d ok</b>, <b>%d failed</b>, %d skipped, %d cancelled%s.</p>
<h2>Timeline (plans over worker slots)</h2>
%s
<h2>Plans</h2>
<table><tr><th>Plan</th><th>Title</th><th>Status</th><th>Worker</th><th>Attempts</th><th>Seconds</th><th>Checks</th><th>Result or reason</th></tr>
%s
</table>
<p>Run folder: %s</p>
</body></html>
]]):format(esc(d.run_id), esc(d.run_id), esc(d.started), esc(d.ended), d.seconds, c.ok, c.failed,
    c.skipped, c.cancelled, run.interrupted and (", interrupted by " .. runtime.signal_name(run.interrupted))
      or run.stopped and (", stopped by the recipe: " .. esc(run.stopped)) or "",
    timeline(run), table.concat(rows, "\n"), esc(d.run_dir))
  escaped = {}
  return page
end

-- Writes run.json and report.html; returns their paths (nil for one that
-- could not be written) and, when one could not, why (a full disk: the
-- results and the journal stand without them). Both are made from the
-- run's journal, which is on disk already: they are not waited for (two
-- fsyncs cost 30 ms at the end of a run), and `rasrun resume RUN_FOLDER`
-- writes them again should a crash take them.
function M.write(run)
  local jp = path.join(run.run_dir, "run.json")
  local hp = path.join(run.run_dir, "report.html")
  local d = M.data(run)
  local ok, err = fs.write(jp, json.encode(d, true) .. "\n", { sync = false })
  if not ok then return nil, nil, err end
  ok, err = fs.write(hp, M.html(run, d), { sync = false })
  if not ok then return jp, nil, err end
  return jp, hp
end

return M

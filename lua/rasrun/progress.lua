-- Progress of a run, on stderr.
-- On a terminal: finished plans scroll by as lines, and a live block at the
-- bottom shows one line per running plan (plan, worker, elapsed, state) and a
-- total line (done/failed/running, ETA). Otherwise: one timestamped line per
-- event. opts.progress = false or opts.quiet = true silences it.
local sys = require "rasrun.sys"

local M = {}
local P = {}
P.__index = P

local function hms(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
  return ("%02d:%02d"):format(s // 60, s % 60)
end

function M.new(opts)
  local mode = "plain"
  if opts.quiet or opts.progress == false then mode = "quiet"
  elseif opts.progress ~= "plain" and sys.isatty(2) and os.getenv("TERM") ~= "dumb" then
    mode = "live" end
  return setmetatable({ mode = mode, out = io.stderr, running = {}, order = {}, drawn = 0,
                        done = 0, failed = 0, cancelled = 0, total = 0, durations = {}, slots = 1 }, P)
end

function P:write(s) if self.mode ~= "quiet" then self.out:write(s) end end

function P:line(msg)
  if self.mode == "live" then
    self:clear()
    self:write(msg .. "\n")
    -- the live block exists from begin on: notes before it (a warning about
    -- a plan, a resume stopping what the killed run left) are lines alone
    if self.t0 then self:draw() end
  else
    self:write(os.date("%Y-%m-%d %H:%M:%S ") .. msg .. "\n")
  end
  self.out:flush()
end

function P:note(msg) self:line(msg) end

-- Calls fn(...), the recipe's code (on_event, a check), with the live block
-- off the screen, so that what it prints stays above the block instead of
-- being drawn over; the block comes back when it returns (or, when it
-- raises, with the next event or tick, after rasrun has said so).
function P:around(fn, ...)
  if self.mode ~= "live" or self.drawn == 0 then return fn(...) end
  self:clear()
  self.out:flush()
  local res = table.pack(fn(...))
  self:draw()
  self.out:flush()
  return table.unpack(res, 1, res.n)
end

-- "1 plan", "2 plans"
-- "1 slot", "2 slots"
local function count(n, word) return ("%d %s%s"):format(n, word, n == 1 and "" or "s") end
M.count = count

function P:begin(total, results, workers)
  self.total, self.t0 = total, sys.now()
  self.slots = 0
  for _, w in ipairs(workers) do self.slots = self.slots + w.slots end
  local pre = 0
  for _, r in ipairs(results) do
    if r.status then
      pre = pre + 1
      self.done = self.done + 1
      if r.status == "failed" then self.failed = self.failed + 1 end
    end
  end
  local what = ("%s on %s (%s)"):format(count(total, "plan"), count(#workers, "worker"),
    count(self.slots, "slot"))
  if pre > 0 then what = what .. (", %d already done"):format(pre) end
  self:line(what)
end

local function label(ev) return ev.job or ev.plan or "?" end

function P:event(ev)
  if self.mode == "quiet" then return end
  local k = label(ev)
  if ev.type == "start" then
    self.running[k] = { worker = ev.worker, t0 = ev.started or sys.now(), state = "staging",
                        attempt = ev.attempt }
    self.order[#self.order + 1] = k
    if self.mode ~= "live" then
      self:line(("start    %s on %s%s"):format(k, ev.worker,
        ev.attempt > 1 and (" (attempt %d)"):format(ev.attempt) or ""))
    end
  elseif ev.type == "launched" then
    if self.running[k] then self.running[k].state = "running" end
  elseif ev.type == "attempt_failed" then
    self:line(("failed   %s on %s (attempt %d): %s"):format(k, ev.worker, ev.attempt, ev.reason or "?"))
  elseif ev.type == "retry" then
    self.running[k] = nil
    self:line(("retry    %s: trying again (attempt %d)"):format(k, ev.attempts + 1))
  elseif ev.type == "done" then
    self.running[k] = nil
    self.done = self.done + 1
    if ev.status == "ok" then
      self.durations[#self.durations + 1] = ev.elapsed or 0
      self:line(("ok       %s in %s (%d attempt%s)%s"):format(k, hms(ev.elapsed or 0), ev.attempts,
        ev.attempts == 1 and "" or "s", ev.reason and ("; note: " .. ev.reason) or ""))
    else
      if ev.status == "cancelled" then self.cancelled = self.cancelled + 1
      else self.failed = self.failed + 1 end
      self:line(("%-8s %s: %s"):format(ev.status, k, ev.reason or "?"))
    end
  elseif ev.type == "worker_down" then
    self:line(("worker   %s is down: %s"):format(ev.worker or "?", ev.reason or "?"))
  elseif ev.type == "worker_up" then
    self:line(("worker   %s is up"):format(ev.worker or "?"))
  elseif ev.type == "interrupted" then
    self:line(("interrupted (%s): stopping the running engines, cleaning up"):format(ev.reason or "signal"))
  end
end

-- Estimated time left: the plans not finished, at the mean duration so far,
-- spread over the slots.
function P:eta()
  if #self.durations == 0 then return nil end
  local sum = 0
  for _, d in ipairs(self.durations) do sum = sum + d end
  local mean = sum / #self.durations
  local left = self.total - self.done
  local now = sys.now()
  local running_left, longest = 0, 0
  for _, r in pairs(self.running) do
    local l = math.max(0, mean - (now - r.t0))
    running_left, longest = running_left + l, math.max(longest, l)
  end
  local queued = math.max(0, left - self:count_running())
  -- the work left spread over the slots, but never sooner than the
  -- running plan furthest from its end can end
  return math.max(longest, (running_left + queued * mean) / math.max(1, self.slots))
end

function P:count_running()
  local n = 0
  for _ in pairs(self.running) do n = n + 1 end
  return n
end

function P:clear()
  if self.drawn > 0 then
    self:write(("\27[%dA\27[J"):format(self.drawn))
    self.drawn = 0
  end
end

-- A line cut to w columns (bytes; a UTF-8 sequence is not split).
local function fit(s, w)
  if #s <= w then return s end
  local cut, after = s:sub(1, w), s:byte(w + 1)
  -- a UTF-8 character the cut splits goes whole (one it ends after stays)
  if after >= 0x80 and after < 0xC0 then cut = cut:gsub("[\xC0-\xFF][\x80-\xBF]*$", "") end
  return cut
end

-- s in at most w bytes: its start and end, "..." between (a plan key
-- whose project folder is long keeps the plan number in sight).
local function squeeze(s, w)
  if #s <= w then return s end
  local head = fit(s, (w - 3) // 2)
  return head .. "..." .. (s:sub(-(w - 3 - #head)):gsub("^[\x80-\xBF]+", ""))
end

-- A running plan's state; with a file on the move, how much of it has gone
-- and its name, last (a narrow terminal cuts it): "sending 12.0/30.5 MB Big.b01".
function P:state_of(k, r)
  local m = self.moving and self.moving[k]
  if not m then return r.state end
  return ("%s %.1f/%.1f MB %s"):format(r.state == "staging" and "sending" or "fetching",
    m.done / 1e6, m.size / 1e6, m.file)
end

-- The block: one line per running plan and a total, each cut to the
-- terminal's width (a wrapped line would not be erased by the next redraw),
-- and no more plan lines than the terminal has rows for.
function P:draw()
  if self.mode ~= "live" then return end
  local cols, rows = sys.term_size(2)
  cols, rows = (cols or 80) - 1, rows or 24
  local now, lines = sys.now(), {}
  local keep, shown = {}, math.max(1, rows - 3)
  local more = 0
  for _, k in ipairs(self.order) do
    local r = self.running[k]
    if r and not keep[k] then
      keep[k] = true
      if #lines < shown then
        lines[#lines + 1] = ("  %-24s %-14s %8s  %s"):format(squeeze(k, 24), squeeze(r.worker, 14), hms(now - r.t0),
          self:state_of(k, r))
      else
        more = more + 1
      end
    end
  end
  if more > 0 then
    -- the last plan line makes room for the count of those not shown
    lines[#lines] = ("  ... and %d more running"):format(more + 1)
  end
  local order = {}
  for _, k in ipairs(self.order) do if keep[k] then order[#order + 1] = k; keep[k] = false end end
  self.order = order
  local eta = self:eta()
  lines[#lines + 1] = ("[%d/%d done, %d failed%s, %d running, %s elapsed%s]"):format(self.done,
    self.total, self.failed, self.cancelled > 0 and (", %d cancelled"):format(self.cancelled) or "",
    #order, hms(now - self.t0), eta and (", ETA " .. hms(eta)) or "")
  for i, l in ipairs(lines) do lines[i] = fit(l, cols) end
  self:write(table.concat(lines, "\n") .. "\n")
  self.drawn = #lines
end

-- moving: the files being sent or fetched, by plan key ({file=, done=, size=}).
function P:tick(moving)
  if self.mode ~= "live" then return end
  self.moving = moving or {}
  self:clear()
  self:draw()
  self.out:flush()
end

function P:finish(run)
  self:clear()
  local c = run.counts
  local msg = ("%s: %d ok, %d failed, %d skipped, %d cancelled in %s"):format(count(#run.results, "plan"),
    c.ok, c.failed, c.skipped, c.cancelled, hms(run.ended - run.started))
  if self.mode == "quiet" then return end
  self:write(msg .. "\n")
  for _, r in ipairs(run.results) do
    if r.status == "failed" or r.status == "cancelled" then
      self:write(("  %-9s %s: %s\n"):format(r.status, r.key, r.reason or "?"))
    end
  end
  self:write(run.report_path and ("report: %s\n"):format(run.report_path)
    or ("report not written: %s\n"):format(run.report_error or "?"))
  self.out:flush()
end

return M

-- The standard checks a careful engineer runs on a HEC-RAS result file.
--
-- Each check is function(r, ctx) -> ok, detail, where r comes from
-- rasrun.results.read; ok = nil means the check does not apply (skipped).
-- ctx may carry:
--   since        epoch seconds on the engine host's clock when the engine started;
--                the result must have been written after it (freshness)
--   utc_offset   the engine host's UTC offset in seconds (Run Time Window is its
--                wall clock)
--   since_text   what the file check says of a fresh file (default "written
--                by this run"), since_mark what comes before since's time in
--                a stale one's reason (default "the engine started at")
-- A check set from checks.standard{...} is called as set(path, ctx) and
-- returns a report { file=, ok=, checks = { {name=, ok=, detail=}... }, reason= }.
local results = require "rasrun.results"
local hecdate = require "rasrun.hecdate"
local sys = require "rasrun.sys"
local path = require "rasrun.path"

local M = {}

-- Lines of the compute messages that mean the run failed.
M.error_patterns = {
  "ERROR:", "Geometry Writer Failed", "Error with program:", "Unhandled Exception",
  "Computations Aborted", "Error in program", "Simulation Aborted",
}

local function short(s, n)
  n = n or 120
  s = s:gsub("^%s+", ""):gsub("%s+$", "")
  if #s > n then return s:sub(1, n - 3) .. "..." end
  return s
end

-- Clock slack for freshness: mtimes are exact, Run Time Window has whole seconds.
local SLACK = 2

function M.file(r, ctx)
  if not r.has_results then
    local name = ctx and ctx.name or r.path
    if r.plan and name:lower():match("%.tmp%.hdf$") then
      return false, "the plan's input to the Linux engine (.tmp.hdf), not a result: it holds no results"
    end
    if r.plan then
      return false, "the file holds plan data but no results: the engine wrote none"
    end
    return false, ("no Results group (File Type %q): not a HEC-RAS result file")
      :format(r.file_type or "?")
  end
  local since = ctx and ctx.since
  if since then
    local mark = ctx.since_mark or "the engine started at"
    if r.mtime < since - SLACK then
      return false, ("stale: written %s, before %s %s")
        :format(os.date("%Y-%m-%d %H:%M:%S", math.floor(r.mtime)), mark,
                os.date("%Y-%m-%d %H:%M:%S", math.floor(since)))
    end
    -- the window's start, on the clock at the engine's start (its end can
    -- read earlier when the clock went back for daylight saving meanwhile)
    -- (a caller that does not say: this machine's clock)
    local launched = hecdate.local_naive(since, ctx.utc_offset or sys.tz_offset(since))
    if r.run_window and r.run_window.start and r.run_window.start < launched - SLACK then
      return false, ("stale: Run Time Window %q began before %s %s")
        :format(r.run_window.text, mark, hecdate.format(launched))
    end
  end
  local what = r.kind and (r.kind .. " results") or "results summary only"
  local unread = since and r.run_window and r.run_window.error
    and ("; Run Time Window unreadable (%s): fresh by the file's time only"):format(r.run_window.error) or ""
  return true, ("%s, %s, %d bytes%s%s"):format(r.version or "HEC-RAS", what, r.size,
    since and (", " .. (ctx.since_text or "written by this run")) or "", unread)
end

local SUCCESS = { unsteady = "Unsteady Finished Successfully", steady = "Steady Finished Successfully" }

function M.solution(r)
  if not r.kind then
    return false, "no Unsteady or Steady results in the file (the run failed before computing)"
  end
  if not r.solution then
    local where = ("Results/%s/Summary"):format(r.kind == "steady" and "Steady" or "Unsteady")
    for _, name in ipairs(r.unreadable or {}) do
      if name == "Solution" then
        return false, ("the Solution attribute of %s cannot be read (an HDF5 type rasrun does not read)")
          :format(where)
      end
    end
    if r.has_summary then return false, "no Solution attribute in " .. where end
    return false, ("no Solution attribute: %s is missing"):format(where)
  end
  if r.solution == SUCCESS[r.kind] then return true, "Solution: " .. r.solution end
  local detail = ("Solution: %q"):format(r.solution)
  if r.unstable_at then detail = detail .. " (unstable at " .. r.unstable_at .. ")" end
  return false, detail
end

function M.volume(r, ctx)
  local limit = (ctx and ctx.max_volume_error) or 1.0
  if r.kind == "steady" then return true, "not applicable (steady flow)" end
  if not r.kind then return nil, "skipped: no unsteady results" end
  if not r.volume or type(r.volume.error_percent) ~= "number" then
    return false, "no volume accounting in Results/Unsteady/Summary"
  end
  local pct = r.volume.error_percent
  if pct ~= pct then return false, "volume accounting error is NaN" end
  if math.abs(pct) >= limit then -- the error must stay below the limit
    return false, ("volume accounting error %.4g%% %s %.4g%%"):format(pct,
      math.abs(pct) > limit and "exceeds" or "reaches the limit of", limit)
  end
  return true, ("volume accounting error %.4g%% (limit %.4g%%)"):format(pct, limit)
end

function M.messages(r)
  local text = r.messages
  if not text then return true, "no compute messages stored" end
  -- the first line holding any of the patterns (one search per pattern over
  -- the whole text: compute messages can run to thousands of lines)
  local first
  for _, pat in ipairs(M.error_patterns) do
    local at = text:find(pat, 1, true)
    if at and (not first or at < first) then first = at end
  end
  if not first then return true, "no error lines in the compute messages" end
  local from = first
  while from > 1 and text:sub(from - 1, from - 1) ~= "\n" do from = from - 1 end
  local to = text:find("\n", first, true)
  return false, 'compute messages: "' .. short(text:sub(from, to and to - 1 or #text)) .. '"'
end

-- Optional: every 2D cell's maximum WSEL within [min, max] (opts.area names
-- one area; default all), or within tolerance of a baseline result file.
-- The checks of this module (they print nothing), by function; maxima's
-- made ones too.
local BUILTIN = setmetatable({}, { __mode = "k" })

function M.maxima(opts)
  local function fn(r, ctx)
    -- the plan that writes the baseline: its result is compared with none
    local baseline = opts.baseline
    local own = baseline and ctx and ctx.name and path.abspath(ctx.name) == path.abspath(baseline)
    if own then baseline = nil end
    local areas = results.areas(r.path) or {}
    if opts.area then
      -- (a name mistyped in the recipe: the file's own names say which)
      local found = false
      for _, a in ipairs(areas) do found = found or a == opts.area end
      if not found then
        return false, ("no 2D area %q with a maximum water surface in the result%s"):format(opts.area,
          #areas > 0 and (" (its areas: " .. table.concat(areas, ", ") .. ")") or "")
      end
      areas = { opts.area }
    end
    if #areas == 0 then return false, "no 2D maximum water surface in the file" end
    local base_areas = {}
    for _, area in ipairs(areas) do
      local mx, err = results.max_wsel(r.path, area)
      if not mx then return false, err end
      local base
      if baseline then
        base, err = results.max_wsel(baseline, area)
        if not base then return false, "baseline: " .. err end
        if #base.wsel ~= #mx.wsel then
          return false, ("area %s: %d cells, baseline has %d"):format(area, #mx.wsel, #base.wsel)
        end
      end
      for i, v in ipairs(mx.wsel) do
        if v ~= v or (base and base.wsel[i] ~= base.wsel[i]) then
          return false, ("area %s cell %d: max WSEL is NaN%s"):format(area, i - 1,
            v == v and " in the baseline" or "")
        end
        if opts.min and v < opts.min then
          return false, ("area %s cell %d: max WSEL %.3f below %.3f"):format(area, i - 1, v, opts.min)
        end
        if opts.max and v > opts.max then
          return false, ("area %s cell %d: max WSEL %.3f above %.3f"):format(area, i - 1, v, opts.max)
        end
        if base and math.abs(v - base.wsel[i]) > (opts.tolerance or 0.01) then
          return false, ("area %s cell %d: max WSEL %.3f differs from baseline %.3f by more than %g")
            :format(area, i - 1, v, base.wsel[i], opts.tolerance or 0.01)
        end
      end
      base_areas[#base_areas + 1] = ("%s (%d cells)"):format(area, #mx.wsel)
    end
    return true, "maxima within bounds: " .. table.concat(base_areas, ", ")
      .. (own and " (this result is the baseline)" or "")
  end
  BUILTIN[fn] = true
  return fn
end

for _, fn in ipairs({ M.file, M.solution, M.volume, M.messages }) do BUILTIN[fn] = true end

local SetMT = {}
SetMT.__index = SetMT

-- How many values, and the first three (no table per check run).
local function counted(...) return select("#", ...), ... end

-- Runs every check of the set on one file.
function SetMT:run(path, ctx)
  ctx = setmetatable({ max_volume_error = self.max_volume_error }, { __index = ctx or {} })
  local checks, all_ok, reasons = {}, true, nil
  local function add(name, ok, detail)
    local c = { name = name, ok = ok ~= false, detail = detail, skipped = ok == nil or nil }
    checks[#checks + 1] = c
    if not c.ok then
      all_ok = false
      reasons = reasons or {}
      reasons[#reasons + 1] = name .. ": " .. tostring(detail)
    end
  end
  local r, err = results.read(path)
  local passed = {}
  for _, c in ipairs(self.list) do
    local need = c.needs or (c.name ~= "file" and "file" or nil)
    if c.name == "file" and not r then
      add("file", false, err)
    elseif need and not passed[need] then
      add(c.name, nil, ("skipped: the %s check did not pass"):format(need))
    else
      local n, ok, okc, detail = counted(pcall(c.fn, r, ctx))
      if not ok then okc, detail = false, "check raised an error: " .. tostring(okc)
      elseif n == 1 then
        -- nothing returned: a check that forgot its verdict does not pass
        okc, detail = false, "the check returned nothing (return ok, detail; or nil, why to skip it)"
      end
      add(c.name, okc, detail)
      passed[c.name] = okc ~= false
    end
  end
  return { file = path, ok = all_ok, checks = checks, result = r,
           reason = reasons and table.concat(reasons, "; ") or nil }
end

SetMT.__call = SetMT.run

-- The standard set. opts:
--   max_volume_error = 1.0    percent
--   maxima = { min=, max=, area=, baseline=, tolerance= }   optional
--   extra = { {name=, fn=function(r, ctx) return ok, detail end}, ... }
--           (nil, why: the check does not apply and is skipped; returning
--           nothing at all fails)
local STANDARD_OPTS = { max_volume_error = true, maxima = true, extra = true }
local MAXIMA_OPTS = { min = "number", max = "number", area = "string", baseline = "string", tolerance = "number" }

-- A mistake in the options is said where the recipe makes the set, before
-- any plan runs (not as a failed check after hours of computing).
local function check_options(opts)
  local function bad(msg) error("checks.standard: " .. msg, 4) end
  if type(opts) ~= "table" then bad("expected a table of options, got " .. type(opts)) end
  for k in pairs(opts) do
    if not STANDARD_OPTS[k] then
      bad(("unknown option '%s' (options: max_volume_error, maxima, extra)"):format(tostring(k)))
    end
  end
  local v = opts.max_volume_error
  if v ~= nil and (type(v) ~= "number" or not (v > 0)) then
    bad(("max_volume_error must be a percentage above 0, got %s"):format(type(v) == "string" and ("%q"):format(v) or tostring(v)))
  end
  local m = opts.maxima
  if m ~= nil then
    if type(m) ~= "table" then bad("maxima must be a table { min =, max =, area =, baseline =, tolerance = }") end
    for k, val in pairs(m) do
      if not MAXIMA_OPTS[k] then bad(("unknown option maxima.%s (min, max, area, baseline, tolerance)"):format(tostring(k))) end
      if type(val) ~= MAXIMA_OPTS[k] then bad(("maxima.%s must be a %s, got %s"):format(k, MAXIMA_OPTS[k], type(val))) end
    end
  end
  if opts.extra ~= nil and type(opts.extra) ~= "table" then bad("extra must be a list of {name =, fn =} checks") end
  for _, c in ipairs(opts.extra or {}) do
    if type(c) ~= "table" or type(c.name) ~= "string" or type(c.fn) ~= "function" then
      bad("extra checks are {name = string, fn = function}")
    end
  end
end

function M.standard(opts)
  opts = opts or {}
  check_options(opts)
  local set = setmetatable({ max_volume_error = opts.max_volume_error or 1.0, list = {
    { name = "file", fn = M.file },
    { name = "solution", fn = M.solution },
    { name = "volume", fn = M.volume, needs = "solution" },
    { name = "messages", fn = M.messages },
  } }, SetMT)
  if opts.maxima then set.list[#set.list + 1] = { name = "maxima", fn = M.maxima(opts.maxima) } end
  -- (pool:run looks for it before any plan runs)
  set.baseline = opts.maxima and opts.maxima.baseline
  for _, c in ipairs(opts.extra or {}) do set.list[#set.list + 1] = c end
  return set
end

function M.is_set(v) return getmetatable(v) == SetMT end

-- Whether running check may run the recipe's own code (which may print):
-- a function, or a set with a check of the recipe's in its list; not the
-- standard checks alone.
function M.runs_recipe_code(check)
  if not M.is_set(check) then return true end
  for _, c in ipairs(check.list) do
    if not BUILTIN[c.fn] then return true end
  end
  return false
end

return M

-- Workers, pools and runs: the policy side of the scheduler.
--
--   local w = rasrun.worker { type = "local", name = "here", slots = 2, tier = 0,
--                             engine = { kind = "linux", home = "/opt/hecras/6.6" } }
--   local pool = rasrun.pool { w, ... }
--   local run = pool:run { project = prj, plans = {"03", "01"}, after = {["02"] = {"01"}},
--                          retries = 2, timeout = 3600, check = rasrun.checks.standard{},
--                          on_event = function(ev) end }
--
-- pool:run decides what runs (plan selection, up-to-date skipping, resume,
-- order, dependencies, which engines can run which plan) and hands the rest
-- to the C scheduler (rasrun.sched), then writes run.json and report.html.
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local path = require "rasrun.path"
local json = require "rasrun.json"
local engine = require "rasrun.engine"
local checks = require "rasrun.checks"
local report = require "rasrun.report"
local runtime = require "rasrun.runtime"
local progress_mod = require "rasrun.progress"

local M = {}

-- Where the recipe called pool:run ("recipe.lua:12: "): a mistake in what
-- it asked for is reported there, however deep pool:run found it.
local run_site = ""
local function misuse(msg) error(run_site .. "pool:run: " .. msg, 0) end
-- What the recipe cannot help (a project file that is not there, a run
-- still going): said without a Lua traceback, exit status 2.
local function cannot(msg) runtime.stop(2, "pool:run: " .. msg) end

-- ---- workers ---------------------------------------------------------------

-- More engines at once than any machine has cores is a mistake (and each
-- slot costs the run a folder and a timeline lane).
local MAX_SLOTS = 1024

-- A name as files and folders spell it: '/' and ' ' as '_' (src/sched.c,
-- safe_name). Plan keys and worker names must differ in that form too.
local function safe_name(s) return (s:gsub("[/ ]", "_")) end

-- Letters to change, add or remove to make a into b (Levenshtein).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

-- " (did you mean 'plans'?)" for a key one or two letters from a known
-- one (known: a set of names), else "".
local function did_you_mean(k, known)
  if type(k) ~= "string" then return "" end
  local best, bd
  for name in pairs(known) do
    local d = distance(k:lower(), name)
    if d <= 2 and (not bd or d < bd or (d == bd and name < best)) then best, bd = name, d end
  end
  return best and (" (did you mean '%s'?)"):format(best) or ""
end

-- An attempt of a plan, as the journal's lines name it: "Sample/p01#2".
local function attempt_key(e) return e.job .. "#" .. tostring(e.attempt) end

-- Whether t is a list of n items (n = #t when not given) and nothing else.
local function is_list(t, n)
  if type(t) ~= "table" then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == #t and (n == nil or count == n)
end

-- A value as a message shows it: a string quoted (2 and "2" differ).
local function shown(v) return type(v) == "string" and ("%q"):format(v) or tostring(v) end

-- Fields each worker type takes: required ones are listed with true.
M.types = {
  ["local"] = { workdir = false },
  ssh = { host = true, port = false, user = false, identity = false, agent = false,
          password_env = false, passphrase_env = false, known_hosts = false, host_key = false,
          workdir = false, connect_timeout = false, keepalive = false, io_timeout = false,
          ssh_config = false, macs = false, ciphers = false },
}

local COMMON = { type = true, name = true, slots = true, cores_total = true, cores_per_plan = true,
                 tier = true, engine = true, kill_grace = true, enabled = true }

local Worker = {}
Worker.__index = Worker
function Worker:__tostring() return ("worker %s (%s, %s, tier %d)"):format(
  self.name, self.type, progress_mod.count(self.slots, "slot"), self.tier) end

local counter = 0

local function default_workdir()
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  return path.join(tmp, "rasrun-" .. (os.getenv("USER") or ("uid" .. sys.uid())))
end

function M.worker(cfg)
  if type(cfg) ~= "table" then error("rasrun.worker: expected a table of settings", 2) end
  local t = cfg.type
  local where = ("rasrun.worker{type=%q%s}"):format(tostring(t),
    cfg.name ~= nil and (", name=%s"):format(shown(cfg.name)) or "")
  if t == nil then
    error(("rasrun.worker%s: missing field 'type' (local, ssh)")
      :format(cfg.name ~= nil and ("{name=%s}"):format(shown(cfg.name)) or ""), 2)
  end
  local fields = M.types[t]
  if not fields then
    local known = {}
    for k in pairs(M.types) do known[#known + 1] = k end
    table.sort(known)
    error(("%s: unknown worker type %q (known: %s)"):format(where, t, table.concat(known, ", ")), 2)
  end
  for k, req in pairs(fields) do
    if req and (cfg[k] == nil or cfg[k] == "") then
      error(("%s: missing field '%s'"):format(where, k), 2)
    end
  end
  if cfg.password ~= nil or cfg.passphrase ~= nil then
    error(("%s: give password_env / passphrase_env (the name of an environment variable), "
      .. "never the secret itself"):format(where), 2)
  end
  for k in pairs(cfg) do
    if not COMMON[k] and fields[k] == nil then
      local known = {}
      for name in pairs(COMMON) do known[name] = true end
      for name in pairs(fields) do known[name] = true end
      error(("%s: unknown field '%s'%s"):format(where, tostring(k), did_you_mean(k, known)), 2)
    end
  end
  if cfg.engine == nil then error(("%s: missing field 'engine'"):format(where), 2) end
  local function bad(k, what)
    error(("%s: %s must be %s, got %s"):format(where, k, what, shown(cfg[k])), 3)
  end
  for k, min in pairs({ cores_total = 1, cores_per_plan = 1, tier = 0 }) do
    if cfg[k] ~= nil and (math.type(cfg[k]) ~= "integer" or cfg[k] < min) then
      bad(k, ("a whole number >= %d"):format(min))
    end
  end
  if cfg.kill_grace ~= nil and (type(cfg.kill_grace) ~= "number" or not (cfg.kill_grace >= 0)) then
    bad("kill_grace", "a number of seconds >= 0")
  end
  if cfg.name ~= nil and (type(cfg.name) ~= "string" or cfg.name == "") then bad("name", "a non-empty string") end
  -- (false: none, the default, or what ~/.ssh/config says; a user may be a number)
  for _, k in ipairs({ "workdir", "user", "identity", "known_hosts", "password_env", "passphrase_env" }) do
    local v = cfg[k]
    if v ~= nil and v ~= false and type(v) ~= "string" and not (k == "user" and math.type(v) == "integer") then
      bad(k, "a string or false")
    end
  end
  if cfg.enabled ~= nil and type(cfg.enabled) ~= "boolean" then bad("enabled", "true or false") end
  -- (numbers may come as strings of digits: os.getenv("SSH_PORT"), JSON)
  local numbers = {}
  if t == "ssh" then
    if type(cfg.host) ~= "string" then bad("host", "a host name or address") end
    local port = cfg.port ~= nil and math.tointeger(tonumber(cfg.port))
    if cfg.port ~= nil and not (port and port >= 1 and port <= 65535) then
      bad("port", "a whole number from 1 to 65535")
    end
    numbers.port = port or nil
    if cfg.agent ~= nil and type(cfg.agent) ~= "boolean" then bad("agent", "true or false") end
    if cfg.ssh_config ~= nil and type(cfg.ssh_config) ~= "string" then bad("ssh_config", "a file's path") end
    -- OpenSSH's MACs and Ciphers: a comma list, or a list of names
    for _, k in ipairs({ "macs", "ciphers" }) do
      local v, names = cfg[k], is_list(cfg[k]) and #cfg[k] > 0
      for i = 1, names and #v or 0 do names = names and type(v[i]) == "string" end
      if v ~= nil and not ((type(v) == "string" and v ~= "") or names) then
        bad(k, 'names in order of preference ("a,b" or { "a", "b" })')
      end
    end
    for _, k in ipairs({ "connect_timeout", "io_timeout", "keepalive" }) do
      local v = cfg[k] ~= nil and tonumber(cfg[k])
      if cfg[k] ~= nil and not (v and v >= 0) then bad(k, "a number of seconds >= 0") end
      numbers[k] = v or nil
    end
  end
  local e = engine.check(cfg.engine, where)
  -- a local engine starts inside each attempt's work folder: its home is
  -- made absolute here, from where the recipe runs (a Windows path stays)
  if t == "local" and not e.home:match("^%a:[/\\]") then e.home = path.abspath(e.home) end
  local slots = cfg.slots
  if slots == nil and cfg.cores_total then
    slots = math.max(1, (cfg.cores_total // (cfg.cores_per_plan or 1)))
  end
  slots = slots or 1
  if math.type(slots) ~= "integer" or slots < 1 or slots > MAX_SLOTS then
    error(("%s: slots must be a whole number from 1 to %d, got %s"):format(where, MAX_SLOTS, shown(slots)), 2)
  end
  counter = counter + 1
  local w = setmetatable({}, Worker)
  for k, v in pairs(cfg) do w[k] = v end
  for k, v in pairs(numbers) do w[k] = v end
  w.name = cfg.name or (t .. counter)
  w.slots, w.tier, w.engine = slots, cfg.tier or 0, e
  if t == "ssh" and cfg.host_key and cfg.host_key ~= "strict" and cfg.host_key ~= "accept-new" then
    error(("%s: host_key must be \"strict\" or \"accept-new\", got %q"):format(where, tostring(cfg.host_key)), 2)
  end
  w.workdir = cfg.workdir or (t == "local" and default_workdir() or "rasrun")
  -- a host's relative work folder is under the login home: "~/x" is "x"
  -- there (no shell expands it in rasrun's commands)
  if t ~= "local" and type(w.workdir) == "string" then w.workdir = w.workdir:gsub("^~/+", ""):gsub("^~$", ".") end
  w.workdir = t == "local" and path.abspath(w.workdir) or w.workdir
  return w
end

function M.is_worker(v) return getmetatable(v) == Worker end

-- ---- pools -----------------------------------------------------------------

local Pool = {}
Pool.__index = Pool

function M.pool(list)
  if type(list) ~= "table" or M.is_worker(list) or (#list == 0 and next(list) ~= nil) then
    error("rasrun.pool: expected a list of workers: rasrun.pool { w1, w2, ... }", 2)
  end
  local workers, names, folders = {}, {}, {}
  for i, w in ipairs(list) do
    if not M.is_worker(w) then
      error(("rasrun.pool: entry %d is not a worker (make it with rasrun.worker{...})"):format(i), 2)
    end
    if names[w.name] then error(("rasrun.pool: two workers are named %q"):format(w.name), 2) end
    -- slot folders name a worker in its safe form: two workers on one host
    -- with one work folder must differ in it
    local folder = table.concat({ w.type, w.host or "", tostring(w.port or ""), w.user or "", w.workdir,
                                  safe_name(w.name) }, "\0")
    if folders[folder] then
      error(("rasrun.pool: workers %q and %q would share their work folders (%q): rename one")
        :format(folders[folder], w.name, safe_name(w.name)), 2)
    end
    names[w.name], folders[folder] = true, w.name
    if w.enabled ~= false then workers[#workers + 1] = w end
  end
  if #workers == 0 then error("rasrun.pool: no (enabled) workers", 2) end
  return setmetatable({ workers = workers }, Pool)
end

function Pool:__tostring()
  local slots = 0
  for _, w in ipairs(self.workers) do slots = slots + w.slots end
  local count = progress_mod.count
  return ("pool of %s, %s"):format(count(#self.workers, "worker"), count(slots, "slot"))
end

-- ---- plan selection and order ---------------------------------------------

local function as_project(p)
  if type(p) == "string" then
    local prj, err = require("rasrun.project").open(p)
    if not prj then misuse(err) end
    return prj
  end
  if type(p) ~= "table" or not p.plans then misuse("project must be a project or a .prj path") end
  return p
end

-- Plans of one project in the order the recipe asked for.
local function select_plans(prj, sel)
  local out = {}
  if sel == nil then
    for _, p in ipairs(prj:plans()) do out[#out + 1] = p end
  elseif type(sel) == "function" then
    for _, p in ipairs(prj:plans()) do
      local ok, take = pcall(sel, p)
      if not ok and runtime.is_stop(take) then error(take, 0) end -- rasrun.fail: as it said
      if not ok then
        misuse(("the plans filter raised an error on plan %s of %s%s: %s"):format(p.number,
          prj.path, p.error and (" (" .. p.error .. ")") or "", tostring(take)))
      end
      if take then out[#out + 1] = p end
    end
  elseif type(sel) == "table" then
    local given = {}
    for _, id in ipairs(sel) do
      local ok, p, err = pcall(prj.plan, prj, id)
      if not ok or not p then misuse(tostring(ok and err or p)) end
      if given[p.id] then
        misuse(("plan %s is listed twice in plans (as %q and %q)")
          :format(p.number, tostring(given[p.id]), tostring(id)))
      end
      given[p.id] = id
      out[#out + 1] = p
    end
  else
    misuse("plans must be a list of plan numbers or a function(plan)")
  end
  return out
end

-- Past run times (seconds) per plan result, kept beside the project's runs.
local function history_file(prj) return path.join(prj.dir, ".rasrun", "history.json") end

local function load_history(prj)
  local data = fs.read(history_file(prj))
  local ok, h = pcall(json.decode, data or "{}")
  -- a damaged history is forgotten, and so is any entry that is not a
  -- plan number's run time in seconds (saved back without it)
  local out = {}
  for plan, secs in pairs(ok and type(h) == "table" and h or {}) do
    if type(plan) == "string" and math.type(secs) and secs >= 0 then out[plan] = secs end
  end
  return out
end

-- Remembers the run times of the plans that ended ok, in each project's
-- history (one pass over the results, then one file per project). Only the
-- plan order depends on it: written without waiting for the disk (an fsync
-- per project cost more than all the rest of a 1000-plan run's ending).
local function save_history(projects, results)
  local times = {}
  for _, r in ipairs(results) do
    if r.status == "ok" and r.elapsed and r.elapsed > 0 then
      times[r.project] = times[r.project] or {}
      times[r.project][r.plan] = r.elapsed
    end
  end
  for _, prj in ipairs(projects) do
    local h = load_history(prj)
    for plan, secs in pairs(times[prj] or {}) do h[plan] = secs end
    fs.mkdirs(path.join(prj.dir, ".rasrun"))
    fs.write(history_file(prj), json.encode(h), { sync = false })
  end
end

local function order_jobs(jobs, order)
  if order == nil or order == "given" then return jobs end
  if order == "longest_first" then
    local hist = {}
    for _, j in ipairs(jobs) do
      hist[j.project] = hist[j.project] or load_history(j.project)
      j.expected = hist[j.project][j.plan.number] or math.huge -- unknown first: may be long
    end
    local idx = {}
    for i, j in ipairs(jobs) do idx[j] = i end
    table.sort(jobs, function(a, b)
      if a.expected ~= b.expected then return a.expected > b.expected end
      return idx[a] < idx[b]
    end)
    return jobs
  end
  if type(order) == "function" then
    table.sort(jobs, function(a, b) return order(a.plan, b.plan) end)
    return jobs
  end
  misuse(("order must be \"given\", \"longest_first\" or a function, got %s")
    :format(tostring(order)))
end

-- ---- dependencies -----------------------------------------------------------

local function resolve_after(jobs, after, warn)
  if after == nil then return end
  if type(after) ~= "table" then misuse("after must map a plan to the plans it waits for") end
  -- a plan that waits for itself: a list of pairs ({ {"02", "01"} }) reads
  -- as plan 01 (key 1) waiting for 02 and 01
  local num = require("rasrun.project").plan_number
  for id, deps in pairs(after) do
    for _, d in ipairs(type(deps) == "table" and deps or { deps }) do
      if num(id) and num(id) == num(d) then
        if math.type(id) == "integer" then
          misuse("after maps a plan to the plans it waits for, as in after = { [\"02\"] = { \"01\" } }; "
            .. ("a list reads as plan %s waiting for itself"):format(num(id)))
        end
        misuse(("plan %s waits for itself in after"):format(num(id)))
      end
    end
  end
  local by_key = {}
  for i, j in ipairs(jobs) do by_key[j.key] = i end
  -- The jobs id names: a job's key names that job; a plan number ("02",
  -- "p2", 2) names that plan in every project of the run, or in project
  -- prj only when given (a plan waits for plans of its own project).
  local function find(id, prj)
    if by_key[tostring(id)] then return { by_key[tostring(id)] } end
    local n = require("rasrun.project").plan_number(id)
    local out, seen = {}, {}
    for i, j in ipairs(jobs) do
      if j.plan.number == n and (not prj or j.project == prj) and not seen[j.project] then
        seen[j.project] = true
        out[#out + 1] = i
      end
    end
    return out
  end
  for id, deps in pairs(after) do
    local targets = find(id)
    if #targets == 0 then misuse(("after names plan %s, which is not in this run"):format(id)) end
    if type(deps) ~= "table" then deps = { deps }
    elseif #deps == 0 and next(deps) ~= nil then
      misuse(("after[%s] must list the plans it waits for ({\"01\", ...}), not map them"):format(shown(id)))
    end
    for _, d in ipairs(deps) do
      -- a plan number applies in the projects that have both plans
      local found = false
      for _, i in ipairs(targets) do
        local k = find(d, jobs[i].project)[1]
        if k then
          found = true
          local list = jobs[i].after_idx or {}
          list[#list + 1] = k
          jobs[i].after_idx = list
        end
      end
      if not found then
        misuse(("plan %s waits for %s, which is not in this run"):format(id, d))
      end
    end
  end
  -- A list of pairs ({ {"03", "02"} }) reads as plan 01 (key 1) waiting for
  -- 03 and 02, as { [1] = {2, 3} } does: said, as it is likely a mistake.
  local pairs_only = is_list(after) and #after > 0
  for _, v in ipairs(pairs_only and after or {}) do pairs_only = pairs_only and is_list(v, 2) end
  if pairs_only then
    local first = after[1]
    local a, b = num(first[1]) or first[1], num(first[2]) or first[2]
    warn(("warning: after = { {%s, %s}, ... } makes plan 01 wait for plans %s and %s; for plan %s "
      .. "waiting for %s, write after = { [\"%s\"] = { \"%s\" } }")
      :format(shown(first[1]), shown(first[2]), a, b, a, b, a, b))
  end
  -- Cycles would wait forever: refuse them (visit returns the path that
  -- came back to a plan on it; the cycle starts at that plan's first visit).
  local state = {}
  local function visit(i, trail)
    if state[i] == 1 then return trail end
    if state[i] == 2 then return nil end
    state[i] = 1
    for _, k in ipairs(jobs[i].after_idx or {}) do
      trail[#trail + 1] = k
      if visit(k, trail) then return trail end
      trail[#trail] = nil
    end
    state[i] = 2
  end
  for i in ipairs(jobs) do
    local trail = visit(i, { i })
    if trail then
      local names, from = {}, 1
      while trail[from] ~= trail[#trail] do from = from + 1 end
      -- plan numbers within one project, keys across projects
      local one = true
      for n = from, #trail do one = one and jobs[trail[n]].project == jobs[trail[from]].project end
      for n = from, #trail do names[#names + 1] = one and jobs[trail[n]].plan.number or jobs[trail[n]].key end
      misuse("the after dependencies form a cycle: " .. table.concat(names, " -> "))
    end
  end
end

-- ---- checks -----------------------------------------------------------------

-- The check the scheduler calls on a staged result: returns a report.
-- check = false: none of the checks but the first, the file's: what is
-- taken must hold results, written by this attempt (never a stale one).
-- The Linux engine's comes back in the .tmp.hdf it was given, which an
-- engine that stopped before writing any (exit code 0) leaves without a
-- /Results group, or with an earlier run's.
local function holds_results(tmp, ctx)
  local r, err = require("rasrun.results").read(tmp)
  local ok, detail = false, err
  if r then ok, detail = checks.file(r, ctx) end
  local why = not ok and (path.basename(ctx.name) .. ": " .. tostring(detail)) or nil
  return { ok = ok, reason = why, checks = { { name = "file", ok = ok, detail = detail } } }
end

-- "what: MESSAGE" for a stop (rasrun.fail) that gave a message, else what.
local function with_message(what, stop)
  return stop.message and (what .. ": " .. stop.message) or what
end

-- progress (optional): a recipe's own check runs with the live block off
-- the screen (P:around). stop(e): a check that called rasrun.fail stops the
-- run; its attempt is cancelled, saying so. Without stop (the up-to-date
-- call, before the run) the error goes on to the caller.
local function make_check(check, progress, stop)
  if check == false then check = holds_results end
  check = check or checks.standard {}
  -- (the standard checks print nothing: the live block stays drawn)
  if check == holds_results or not checks.runs_recipe_code(check) then progress = nil end
  local function call(...)
    if progress then return progress:around(check, ...) end
    return check(...)
  end
  local function checked(job, tmp, ctx)
    local rep
    if checks.is_set(check) then
      rep = call(tmp, ctx) -- (its extra checks are the recipe's code)
    else
      local ok, detail = call(tmp, ctx, job.plan)
      if type(ok) == "table" then rep = ok
      else
        local why = ok == nil and detail == nil and "the recipe's check returned nothing (return true, or false and why)"
          or detail or "the recipe's check failed"
        rep = { ok = ok and true or false, reason = not ok and why or nil,
                checks = { { name = "recipe", ok = ok and true or false, detail = detail } } }
      end
    end
    rep.file = ctx.name
    rep.result = nil
    -- for the journal: a resume's reports show the checks of what finished before
    local ok, enc = pcall(json.encode, report.plain_checks(rep.checks))
    rep.checks_json = ok and enc or nil
    return rep
  end
  return function(job, tmp, ctx)
    local ok, rep = pcall(checked, job, tmp, ctx)
    if ok then return rep end
    if not stop or not runtime.is_stop(rep) then error(rep, 0) end
    stop(rep)
    -- (its attempt is cancelled, as the others)
    return { ok = false, stopped = true,
             reason = with_message("the check stopped the run", rep) }
  end
end

-- An error value as text, as the scheduler tells a check's: a string, a
-- table's message, else its type (no __tostring: it could raise in turn).
local function error_text(e)
  if type(e) == "string" or type(e) == "number" then return tostring(e) end
  if type(e) == "table" and type(rawget(e, "message")) == "string" then return rawget(e, "message") end
  return "a " .. type(e) .. " value"
end

-- Up to date: the result is newer than its inputs (Plan:sources), and passes
-- the checks (freshness aside: it was made by an earlier run).
local function up_to_date(plan, check)
  if plan:result_state() ~= "current" then return false end
  local c = make_check(check)
  -- as the scheduler calls it: the plan number; a check that raises means
  -- "not known to be good", and the plan runs (its check then says why)
  local ok, rep = pcall(c, { plan = plan.number }, plan:result_path(), { name = plan:result_path() })
  if not ok and runtime.is_stop(rep) then error(rep, 0) end -- rasrun.fail: the recipe stops here
  if not ok then return false, nil, error_text(rep) end
  return rep.ok, rep
end

-- ---- resume -----------------------------------------------------------------

-- Why a result an interrupted run finished no longer holds results (its
-- data lost in a crash of the machine, say), or nil when it does.
local function damaged_result(file)
  local rep = holds_results(file, { name = file })
  if not rep.ok then return rep.checks[1].detail end
end

-- What an earlier, interrupted run of the same plans finished, from its journal.
local function read_resume(dir)
  local entries, broken = require("rasrun.journal").read(path.join(dir, "journal.jsonl"))
  if not entries then cannot("cannot resume: " .. broken) end
  -- started: per attempt ("job#N"), its last step that started, or the
  -- attempt itself while no engine of it is in the journal (the controller
  -- writes "launched" a moment after the spawn: it may have died between)
  -- A run folder used again (a fixed run_dir) holds earlier runs before the
  -- last run_start: only that run, and the resumes of it, count.
  local first = 1
  for i, e in ipairs(entries) do
    if e.ev == "run_start" then first = i end
  end
  local done, failed, started, ended, ids, tried, start = {}, {}, {}, {}, {}, {}, nil
  local commits = {} -- per attempt, the files of the commit it began
  local slot_dirs, seen_dir = {}, {} -- per worker, the work folders its attempts used
  local history, attempt_of = {}, {} -- per plan, its attempts as the reports show them
  local boot -- of the controller that wrote what follows (older journals: none)
  -- A controller's attempts it did not see end ended with it, as far as the
  -- reports can tell: at its last line.
  local last_t, run_end -- run_end: when the run, as resumed last, ended
  local function controller_died()
    for _, h in pairs(attempt_of) do
      if not h.status then
        h.status, h.reason, h.ended = "cancelled", "the controller died during it", last_t
      end
    end
  end
  for i = first, #entries do
    local e = entries[i]
    if e.ev == "run_resume" then controller_died() end
    -- (a resume's lines on the engines it stopped, and on the commits it
    -- settled, are not the dead controller's)
    if not e.stopped_by_resume and e.ev ~= "commit_settled" then last_t = e.t or last_t end
    -- (Ctrl-C, or a stop by the recipe: not the run's end)
    if e.ev == "run_end" then run_end = not e.signal and not e.stopped and e.t or nil end
    if e.ev == "run_start" or e.ev == "run_resume" then
      run_end = nil -- (a run that went on after it)
      boot = e.boot_id
      if e.run_id then ids[e.run_id] = true end
      if e.ev == "run_start" then start = e end
    end
    -- a resume states again what finished before it: the first word counts
    if e.ev == "done" and e.status == "ok" and not (e.resumed and done[e.job]) then done[e.job] = e end
    if e.ev == "done" and e.status == "failed" and not (e.resumed and failed[e.job]) then failed[e.job] = e end
    -- a result moved into place just before the controller died, its "done" unwritten
    if e.ev == "attempt_end" and e.ok and e.job and not done[e.job] then
      done[e.job] = { job = e.job, status = "ok", t = e.t }
    end
    local k = e.job and math.type(e.attempt) and attempt_key(e)
    if k and (e.ev == "attempt" or e.ev == "launched") then
      e.boot_id = boot
      if e.ev == "launched" or not started[k] then started[k] = e end
      tried[e.job] = math.max(tried[e.job] or 0, e.attempt)
    end
    if k and e.ev == "attempt_end" then ended[k] = true end
    if k and e.ev == "commit" and type(e.files) == "table" then
      commits[k] = { job = e.job, plan = e.plan, attempt = e.attempt, files = e.files }
    end
    -- (settled by a resume: a later one leaves it alone)
    if k and e.ev == "commit_settled" then commits[k] = nil end
    if k then
      local h = attempt_of[k]
      if e.ev == "attempt" then
        h = { attempt = e.attempt, worker = e.worker, host = e.host, started = e.t, log = e.log,
              workdir = e.workdir }
        attempt_of[k] = h
        history[e.job] = history[e.job] or {}
        table.insert(history[e.job], h)
      elseif h and e.ev == "launched" then
        h.launched = h.launched or e.t
      elseif h and e.ev == "attempt_end" then
        local cancelled = not e.ok and type(e.reason) == "string" and e.reason:find("^cancelled")
        h.status = e.ok and "ok" or cancelled and "cancelled" or "failed"
        -- its end as the run saw it (the line comes after the checks)
        local ended = type(e.elapsed) == "number" and h.started and h.started + e.elapsed or e.t
        h.reason, h.exit_code, h.ended = e.reason, e.exit, ended
        h.bytes_up, h.bytes_down, h.checks = e.bytes_up or 0, e.bytes_down or 0, e.checks
      end
    end
    if e.ev == "attempt" and e.worker and e.workdir and not seen_dir[e.workdir] then
      seen_dir[e.workdir] = true
      slot_dirs[e.worker] = slot_dirs[e.worker] or {}
      table.insert(slot_dirs[e.worker], e.workdir)
    end
  end
  local orphans, unfinished = {}, {}
  for k, e in pairs(started) do
    if not ended[k] then orphans[#orphans + 1] = e end
  end
  for k, c in pairs(commits) do
    if not ended[k] then unfinished[#unfinished + 1] = c end
  end
  controller_died()
  return { done = done, failed = failed, orphans = orphans, ids = ids, tried = tried, start = start or {},
           commits = unfinished,
           run_id = start and start.run_id, slot_dirs = slot_dirs, history = history, run_end = run_end }
end

-- A commit the killed controller began and did not finish (journaled, no
-- attempt_end after it): when its result (the last file it moves) is not in
-- place, the files it had put in place go back out, and the old ones they
-- replaced, under their staged names, back in, so that the project holds
-- the files of one result, all old, not new ones beside an old result (on
-- a file system that cannot swap two files, the old one is gone already:
-- the new one goes all the same). The journal names each new file's inode;
-- one whose result is in place finished, and stays. Each is journaled as
-- settled: a later resume of the run must not touch the files again (their
-- inodes, freed, may be another file's by then).
local function undo_commits(commits, journal)
  local function same(st, ino) return st ~= nil and ino ~= nil and tostring(st.ino) == tostring(ino) end
  for _, c in ipairs(commits) do
    local files = c.files
    local result = files[#files]
    local undo = result ~= nil and not same(fs.stat(result.path), result.ino)
    if undo then
      for i = #files - 1, 1, -1 do
        local f = files[i]
        if same(fs.stat(f.path), f.ino) then
          if fs.exists(f.staged) then fs.rename(f.staged, f.path) else fs.remove(f.path) end
        end
      end
    end
    journal:write { ev = "commit_settled", job = c.job, plan = c.plan, attempt = c.attempt, undone = undo }
  end
end

-- Files a killed controller had staged into the projects and not yet moved
-- into place, or a result it had just swapped out, are named
-- .<name>.rasrun-<run id>-j<job>-a<attempt> (src/sched.c), and one it was
-- copying there from a work folder on another file system, that name's
-- .<...>.<hex>.part (src/fsutil.c): its own, removed.
local function remove_staged(projects, ids)
  for _, p in ipairs(projects) do
    for _, name in ipairs(fs.list(p.dir) or {}) do
      local id = name:match("^%..+%.rasrun%-(.+)%-j%d+%-a%d+$")
        or name:match("^%..+%.rasrun%-(.+)%-j%d+%-a%d+%.%x+%.part$")
      if id and ids[id] then fs.remove(path.join(p.dir, name)) end
    end
  end
end

-- What a killed controller left in the projects: its commits cut short
-- undone, then its staged files removed.
local function tidy_projects(projects, prior, journal)
  undo_commits(prior.commits, journal)
  remove_staged(projects, prior.ids)
end

-- This machine's boot: pids and start times name processes only within one.
local function boot_id()
  local id = fs.read("/proc/sys/kernel/random/boot_id")
  return id and id:gsub("%s+$", "") or nil
end

-- Engines of the killed controller keep running: stop those on this machine
-- (identified by pid and start time within the same boot, so a reused pid
-- is left alone) and remove their work folders. Whether an engine ran here
-- or on an SSH host is the type of the worker that ran it; those go to
-- their worker type.
local function stop_orphans(orphans, workers, say)
  local by_name = {}
  for _, w in ipairs(workers) do by_name[w.name] = w end
  local remote, here, boot = {}, sys.hostname(), boot_id()
  for _, e in ipairs(orphans) do
    local w = by_name[e.worker]
    if w and w.type == "ssh" then
      -- one that never started has nothing on the host to stop
      if e.pid then remote[#remote + 1] = e end
    elseif e.host and e.host ~= here then
      say(("cannot stop the engine of plan %s: it ran on %s (worker %s), this is %s")
        :format(e.plan, e.host, tostring(e.worker), here))
    elseif w or e.host == here then
      -- e is the attempt's last step that started; a local engine's start
      -- time is known within [starttime, starttime_max]
      local st = e.pid and (not e.boot_id or e.boot_id == boot) and sys.alive(e.pid)
        and sys.starttime(e.pid)
      local stopped
      if st and e.starttime and st >= e.starttime and st <= (e.starttime_max or e.starttime) then
        say(("stopping engine pid %d of plan %s left by the interrupted run"):format(e.pid, e.plan))
        sys.kill_tree(e.pid, "KILL")
        stopped, e.stopped_at = e.pid, sys.now()
      end
      if e.workdir and e.workdir:sub(1, 1) == "/" then
        -- anything still working in the attempt's folder is the run's too (a
        -- step that started just before the kill, a helper it left behind)
        for _, pid in ipairs(sys.in_folder(e.workdir)) do
          if pid ~= sys.pid() and pid ~= stopped then
            say(("stopping pid %d, still working in %s"):format(pid, e.workdir))
            sys.kill_tree(pid, "KILL")
            e.stopped_at = e.stopped_at or sys.now()
          end
        end
        fs.rmtree(e.workdir)
        os.remove(path.dirname(e.workdir)) -- the run's work folder, once empty
      end
    else
      say(("cannot stop the engine of plan %s on worker %s: the worker is not in this pool")
        :format(e.plan, tostring(e.worker)))
    end
  end
  return remote
end

-- For `rasrun resume` when no pool:run of the recipe can take the run (its
-- projects moved, or the recipe now runs others): the engines it left on
-- this machine are stopped all the same, from what its journal says, and its
-- staged files removed from the projects still there. Engines on SSH hosts
-- stop by themselves when their controller's connection drops.
function M.stop_left(dir, say)
  local prior = read_resume(dir)
  -- not while its controller still runs it (the journal's lock)
  local journal, err = require("rasrun.journal").open(path.join(dir, "journal.jsonl"))
  if not journal then return say(err) end
  local workers, projects, ssh, here = {}, {}, {}, {}
  for _, w in ipairs(prior.start.workers or {}) do
    if w.type ~= "ssh" then workers[#workers + 1] = { name = w.name, type = w.type } else ssh[w.name] = true end
  end
  for _, prj in ipairs(prior.start.projects or {}) do
    if fs.isdir(path.dirname(prj)) then projects[#projects + 1] = { dir = path.dirname(prj) } end
  end
  -- (the SSH hosts' engines are their pool:run's to stop, or stop by themselves)
  for _, e in ipairs(prior.orphans) do
    if not ssh[e.worker] then here[#here + 1] = e end
  end
  stop_orphans(here, workers, say)
  tidy_projects(projects, prior, journal)
  journal:close()
  local stopped = {}
  for _, e in ipairs(here) do
    if e.stopped_at then stopped[attempt_key(e)] = e.stopped_at end
  end
  return stopped
end

-- ---- the run ----------------------------------------------------------------

local Run = {}
Run.__index = Run

function Run:failed()
  local out = {}
  for _, r in ipairs(self.results) do
    if r.status == "failed" or r.status == "cancelled" then out[#out + 1] = r end
  end
  return out
end

function Run:__tostring()
  local c = self.counts
  return ("run %s: %d ok, %d failed, %d skipped, %d cancelled"):format(self.id, c.ok, c.failed,
    c.skipped, c.cancelled)
end

-- Runs started in the same second share a work folder only if these 32
-- random bits agree too (16 left 1 in 65,536).
-- Time and 32 random bits: two runs started in one second, by two
-- processes, never share an id (math.random could draw the same in both).
local function new_run_id()
  return os.date("%Y%m%d-%H%M%S") .. ("-%08x"):format(sys.random32())
end

local RUN_OPTIONS = {
  project = true, projects = true, plans = true, after = true, retries = true, timeout = true,
  check = true, on_event = true, force = true, resume = true, run_dir = true, order = true,
  keep_scratch = true, progress = true, quiet = true, cancel_wait = true, down_grace = true,
}

local function validate(opts)
  if type(opts) ~= "table" then misuse("expected a table of options") end
  for k in pairs(opts) do
    if math.type(k) == "integer" then
      misuse(("options are named (project = \"Sample.prj\", plans = {...}): got %s without a name")
        :format(shown(opts[k])))
    end
    if not RUN_OPTIONS[k] then
      misuse(("unknown option '%s'%s"):format(tostring(k), did_you_mean(k, RUN_OPTIONS)))
    end
  end
  if not opts.project and not opts.projects then
    -- (project = prj, with prj nil: rasrun.project.open returned nil and why)
    misuse("missing option 'project' (a project, or a .prj path; rasrun.project.open returns nil and "
      .. "a message when it cannot open one)")
  end
  if opts.project and opts.projects then misuse("give project or projects, not both") end
  if opts.projects ~= nil then
    local p = opts.projects
    -- (a list from JSON has a metatable; a project is one project, not a list)
    if type(p) ~= "table" or p.plan_ids ~= nil then
      misuse(("projects must be a list of projects or .prj paths, got %s"):format(shown(p)))
    end
    for i = 1, #p do
      if p[i] == nil then misuse(("projects[%d] is nil (a project that could not be opened?)"):format(i)) end
    end
  end
  -- true or false, and nothing else: force = "false" would recompute every plan
  for _, k in ipairs({ "force", "quiet", "keep_scratch" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      misuse(("%s must be true or false, got %s"):format(k, shown(opts[k])))
    end
  end
  if opts.retries ~= nil and (math.type(opts.retries) ~= "integer" or opts.retries < 0
                              or opts.retries > 1000) then
    misuse("retries must be a whole number from 0 to 1000")
  end
  -- (NaN is no number of seconds: it is not below infinity)
  local function seconds(name, zero_ok)
    local v = opts[name]
    local ok = type(v) == "number" and v < math.huge and (v > 0 or (zero_ok and v == 0))
    if v ~= nil and not ok then
      misuse(("%s must be a number of seconds %s 0"):format(name, zero_ok and ">=" or ">"))
    end
  end
  seconds("timeout")
  seconds("cancel_wait", true) -- 0: at once
  seconds("down_grace", true)
  if opts.progress ~= nil and opts.progress ~= "auto" and opts.progress ~= "plain" and opts.progress ~= false then
    misuse(("progress must be \"auto\" (live on a terminal), \"plain\" or false, got %s")
      :format(shown(opts.progress)))
  end
  -- said before anything runs, not by every plan's check once it ran
  local c = opts.check
  for _, maker in ipairs({ "standard", "maxima" }) do
    if c == checks[maker] then
      misuse(("check = rasrun.checks.%s makes checks, and is not one: call it, as in "
        .. "check = rasrun.checks.%s { ... } (its options in the braces)"):format(maker, maker))
    end
  end
  local callable = type(c) == "function" or (type(c) == "table" and (getmetatable(c) or {}).__call)
  if c ~= nil and c ~= false and not callable and not checks.is_set(c) then
    misuse(("check must be a function, a check set (rasrun.checks.standard{...}) or false, got %s")
      :format(shown(c)))
  end
  if opts.on_event ~= nil and type(opts.on_event) ~= "function" then
    misuse(("on_event must be a function, got %s"):format(shown(opts.on_event)))
  end
  for _, k in ipairs({ "run_dir", "resume" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      misuse(("%s must be a folder's path, got %s"):format(k, shown(opts[k])))
    end
  end
end

-- Engines used by the pool: each worker gets the index of its engine.
local function engines_of(workers)
  local list, index = {}, {}
  for _, w in ipairs(workers) do
    local k = engine.key(w.engine)
    if not index[k] then
      list[#list + 1] = w.engine
      index[k] = #list
    end
    w._engine_index = index[k]
  end
  return list
end

local function worker_table(w)
  local t = {}
  for k, v in pairs(w) do
    if type(v) ~= "table" and type(v) ~= "function" and k:sub(1, 1) ~= "_" then t[k] = v end
  end
  if w.type == "ssh" then
    for k, v in pairs(require("rasrun.ssh").settings(w)) do t[k] = v end
  end
  t.engine = w._engine_index
  t.host = w.type == "local" and sys.hostname() or t.hostname
  return t
end

-- Calls fn with Lua's collector paused (as it was after), errors passed on.
local function without_gc(fn)
  local was = collectgarbage("isrunning")
  collectgarbage("stop")
  local ok, res = pcall(fn)
  if was then collectgarbage("restart") end
  if not ok then error(res, 0) end
  return res
end

local signal_name = runtime.signal_name

function Pool:run(opts)
  local caller = debug.getinfo(2, "Sl")
  run_site = caller and caller.currentline > 0 and ("%s:%d: "):format(caller.short_src, caller.currentline) or ""
  validate(opts)
  if runtime.interrupted and runtime.recipe then
    runtime.stop(128 + runtime.interrupted, ("%snot run: %s interrupted an earlier run of the recipe")
      :format(run_site, signal_name(runtime.interrupted)))
  end
  if runtime.probe_only then
    -- `rasrun workers RECIPE`: probe this pool and stop the recipe here.
    runtime.probed = true
    local ok = require("rasrun.probe").print(self.workers)
    runtime.stop(ok and 0 or 1)
  end
  local started = sys.now()
  -- (a project listed twice is run once: its plans would race for the
  -- same result files)
  local projects, listed = {}, {}
  for _, p in ipairs(opts.projects or { opts.project }) do
    local prj = as_project(p)
    local real = fs.realpath(prj.path) or prj.path -- the same through a symbolic link
    if not listed[real] then
      listed[real] = true
      projects[#projects + 1] = prj
    end
  end
  local progress = progress_mod.new(opts)
  local say = function(msg) progress:note(msg) end

  -- Jobs in the recipe's order, with their keys.
  local jobs, keys = {}, {}
  for _, prj in ipairs(projects) do
    for _, plan in ipairs(select_plans(prj, opts.plans)) do
      -- keys name log files in their safe form: they must differ in it too
      -- ("Dam Break" and "Dam_Break")
      local key = prj.name .. "/" .. plan.id
      if keys[safe_name(key)] then key = key .. "@" .. prj.dir end
      keys[safe_name(key)] = true
      jobs[#jobs + 1] = { key = key, plan = plan, project = prj }
    end
  end
  if #jobs == 0 then
    local n = 0
    for _, prj in ipairs(projects) do n = n + #prj.plan_ids end
    say("warning: no plan to run: " .. (n == 0 and "the projects list no plans"
      or type(opts.plans) == "function" and ("the plans filter took none of the %d plans"):format(n)
      or "plans is an empty list"))
  end
  jobs = order_jobs(jobs, opts.order)
  resolve_after(jobs, opts.after, say)
  -- The result the maxima check compares with is there, or a plan of this
  -- run writes it: said now, not as a failed check of every plan after
  -- hours of computing. A plan of the run that writes it runs before the
  -- others, which compare with what it made (see the dependencies below).
  local baseline = checks.is_set(opts.check) and opts.check.baseline
  local baseline_job
  if baseline then
    local want = path.abspath(baseline)
    for _, j in ipairs(jobs) do
      if path.abspath(j.plan:result_path()) == want then baseline_job = j end
    end
    if not baseline_job and not fs.isfile(baseline) then
      cannot(("the maxima check's baseline %s is not there (no such file, and no plan of this run writes it)")
        :format(baseline))
    end
  end

  -- Resume: what the interrupted run finished stays done. Under `rasrun
  -- resume`, the recipe's pool:run over the same projects and plans as the
  -- run being resumed takes it; its other pool:runs are runs of their own.
  local resume_dir = opts.resume
  local rr = runtime.resume
  -- which pool:run of the recipe this is: two over the same plans (a pass,
  -- then a forced pass) each resume their own run
  runtime.pool_runs = (runtime.pool_runs or 0) + 1
  local ordinal = runtime.pool_runs
  if not resume_dir and rr and not rr.taken then
    local same = #rr.projects == #projects and (rr.ordinal == nil or rr.ordinal == ordinal)
    for i, p in ipairs(projects) do same = same and rr.projects[i] == p.path end
    if same and rr.plans then
      local theirs = {}
      for _, k in ipairs(rr.plans) do theirs[k] = true end
      same = #rr.plans == #jobs
      for _, j in ipairs(jobs) do same = same and theirs[j.key] == true end
    end
    if same then
      resume_dir, rr.taken = rr.dir, true
    end
  end
  local function open_journal(dir)
    local j, err = require("rasrun.journal").open(path.join(dir, "journal.jsonl"))
    if not j then cannot(err) end
    return j
  end
  local prior, remote_orphans, journal = { done = {}, failed = {}, tried = {}, slot_dirs = {}, history = {},
                                           commits = {} }, {}, nil
  if resume_dir then
    prior = read_resume(resume_dir)
    -- the run began when its first controller started it
    if prior.start.t then started = math.min(started, prior.start.t) end
    -- its lock tells whether the run is still going: then nothing of it is touched
    journal = open_journal(resume_dir)
    -- (`rasrun resume` stopped this machine's engines before the recipe ran)
    local stopped, left = rr and rr.dir == resume_dir and rr.stopped or {}, {}
    for _, e in ipairs(prior.orphans) do
      e.stopped_at = stopped[attempt_key(e)]
      if not e.stopped_at then left[#left + 1] = e end
    end
    remote_orphans = stop_orphans(left, self.workers, say)
    tidy_projects(projects, prior, journal)
    -- an engine the resume stopped ran until then: journaled, for the
    -- reports of this resume and of any after it
    for _, e in ipairs(prior.orphans) do
      local why = "cancelled (the controller died during it; the resume stopped its engine)"
      for _, h in ipairs(e.stopped_at and prior.history[e.job] or {}) do
        if h.attempt == e.attempt then
          h.ended, h.reason = e.stopped_at, why
          journal:write { ev = "attempt_end", job = e.job, plan = e.plan, attempt = e.attempt,
                          worker = e.worker, host = e.host, ok = false, reason = why, t = e.stopped_at,
                          stopped_by_resume = true }
        end
      end
    end
  end
  local resumed = prior.done

  -- a resumed run keeps its id: its work folders and staged names carry it
  local run_id = prior.run_id or (resume_dir and path.basename(resume_dir)) or new_run_id()
  local run_dir = path.abspath(resume_dir or opts.run_dir or
    path.join(projects[1] and projects[1].dir or path.cwd(), ".rasrun", "runs", run_id))
  -- the logs go to a fresh part of the disk (see fs_mkdirs_top, fs_mkdirs_spread)
  local made, merr = fs.mkdirs_top(run_dir)
  if made then made, merr = fs.mkdirs_spread(path.join(run_dir, "logs")) end
  if not made then cannot(merr .. " (the run folder; run_dir = ... puts it elsewhere)") end

  -- Which plans run, and on which engines.
  local engines = engines_of(self.workers)
  local results, to_run, spec_memo = {}, {}, {}
  -- a warning said for many plans: the first three, then how many more
  local function warnings(more)
    local n = 0
    return function(msg)
      n = n + 1
      if n <= 3 then say(msg) end
    end, function()
      if n > 3 then say(("warning: and %d more %s"):format(n - 3, more)) end
    end
  end
  local raised_warning, raised_summary = warnings("plans whose check raised an error on their result")
  for i, j in ipairs(jobs) do
    local r = { plan = j.plan.number, key = j.key, project = j.project, title = j.plan.title,
                attempts = 0, elapsed = 0, history = {} }
    results[i] = r
    local done, failed = resumed[j.key], prior.failed[j.key]
    -- what finished stays as it was, unless its result is gone or a source
    -- changed since (it runs again then, as in any run)
    local result = done and (done.result or j.plan:result_path())
    if done and fs.isfile(result) and j.plan:result_state() ~= "current" then done = nil end
    -- nor when it no longer reads as a result: after a crash of the machine,
    -- the journal can hold a finished plan whose file lost its data
    local damaged = done and fs.isfile(result) and damaged_result(result)
    if damaged then
      say(("warning: %s: its result, which the interrupted run finished, is damaged (%s): it runs again")
        :format(j.key, damaged))
      done = nil
    end
    local h = prior.history[j.key] or {}
    if (done and fs.isfile(result)) or failed then
      -- as the run that finished it left it: its attempts, worker and times
      r.resumed, r.history, r.attempts = true, h, #h
      if done then
        r.status, r.result, r.ran_before = done.skipped and "skipped" or "ok", result, not done.skipped
        r.reason = done.reason or done.skipped and "up to date (result newer than its inputs; checks pass)" or nil
      else
        r.status, r.reason = "failed", failed.reason
      end
      if h[1] then
        r.worker, r.host, r.checks = h[#h].worker, h[#h].host, h[#h].checks
        -- as the controller that finished it said (older journals: from its times)
        r.elapsed = (done or failed).elapsed or ((done or failed).t or h[#h].ended or h[1].started) - h[1].started
      end
      -- a plan skipped as up to date: its checks, as journaled
      if done and done.checks and not r.checks then r.checks = done.checks end
    elseif not opts.force and not done and not damaged then
      local fresh, rep, raised = up_to_date(j.plan, opts.check)
      if raised then
        raised_warning(("warning: %s: the check raised an error on its existing result, so it runs again: %s")
          :format(j.key, raised))
      end
      if fresh then
        r.status, r.result, r.report = "skipped", j.plan:result_path(), rep
        r.reason = "up to date (result newer than its inputs; checks pass)"
        -- what the interrupted run did of it stays in its history (an
        -- attempt whose result it put in place just before it died)
        r.history, r.attempts = h, #h
      end
    end
  end
  -- The plans that run, with their engine specs.
  local spec_warning, spec_summary = warnings("plans like these")
  local function schedule(j, r)
    local specs, why = {}, {}
    local waits = { waits = j.after_idx ~= nil }
    for e, eng in ipairs(engines) do
      local s, err = engine.spec(j.plan, eng, spec_memo, waits)
      specs[e] = s or false
      if not s then why[#why + 1] = ("%s engine: %s"):format(eng.kind, err) end
      if s and s.warning then
        spec_warning(("warning: %s: %s"):format(j.key, s.warning))
      end
    end
    -- the attempts that failed in the run being resumed count against the
    -- retries, and the retries go to other workers first, as in any run;
    -- not those before it finished ok (it runs again now as in a new run)
    local failed_on = {}
    for _, h in ipairs(prior.history[j.key] or {}) do
      if h.status == "failed" then failed_on[#failed_on + 1] = h.worker end
      if h.status == "ok" then failed_on = {} end
    end
    local job = { key = j.key, plan = j.plan.number, project_dir = j.project.dir, specs = specs,
                  retries = opts.retries or 0, timeout = opts.timeout, _result = r, _plan = j.plan,
                  attempts_before = prior.tried[j.key], failed_before = #failed_on, failed_on = failed_on }
    if #why == #engines then
      -- a plan file missing or unusable is no engine's doing: said once, as it is
      job.unrunnable = (j.plan.missing or j.plan.broken) and j.plan.error or table.concat(why, "; ")
    end
    to_run[#to_run + 1] = job
    j.sched_index = #to_run
  end
  -- A plan that waits for one that failed in the run being resumed fails
  -- with it, as in any run.
  local failing = next(prior.failed) ~= nil
  while failing do
    failing = false
    for i, j in ipairs(jobs) do
      for _, k in ipairs(not results[i].status and j.after_idx or {}) do
        if results[k].status == "failed" then
          results[i].status = "failed"
          results[i].reason = ("not run: it waits for %s, which failed"):format(jobs[k].key)
          failing = true
          break
        end
      end
    end
  end
  for i, j in ipairs(jobs) do
    if not results[i].status then schedule(j, results[i]) end
  end
  -- A plan that waits for others (for their restart files, say) runs again
  -- when one of them runs (or ran in the interrupted run this one resumes),
  -- up to date or not; not for one that cannot run anywhere. One that the
  -- interrupted run finished runs again when one it waits for runs now.
  local function runs_now(k)
    local sj = jobs[k].sched_index
    return sj and not to_run[sj].unrunnable
  end
  local function reruns(k)
    if jobs[k].sched_index then return runs_now(k) end
    return results[k].ran_before
  end
  -- A plan that runs and misses an input that a plan it waits for writes
  -- (its restart file, since removed) has that plan run too, up to date or
  -- finished before a resume, as make remakes a missing intermediate file.
  local function missing_inputs(j)
    local job, out = to_run[j.sched_index], {}
    for _, spec in ipairs(job.unrunnable and {} or job.specs) do
      for _, name in ipairs(spec and spec.inputs or {}) do
        if not fs.exists(path.join(j.project.dir, name)) then out[#out + 1] = name end
      end
    end
    return out
  end
  local function writes_one_of(k, names)
    local plan = jobs[k].plan
    for _, kind in ipairs({ "windows", "linux" }) do
      for _, list in ipairs({ plan:outputs(kind) }) do
        for _, pattern in ipairs(list) do
          for _, name in ipairs(names) do
            if fs.fnmatch(pattern, name) then return true end
          end
        end
      end
    end
    return false
  end
  local function unskip(i)
    local r = results[i]
    r.status, r.result, r.report, r.reason, r.resumed, r.checks = nil, nil, nil, nil, nil, nil
    schedule(jobs[i], r)
  end
  local unskipped, missing = true, {}
  while unskipped do
    unskipped = false
    for i, j in ipairs(jobs) do
      local r = results[i]
      local finished_before = r.resumed and r.status ~= "failed"
      for _, k in ipairs((r.status == "skipped" or finished_before) and j.after_idx or {}) do
        if (finished_before and runs_now(k)) or (not finished_before and reruns(k)) then
          unskip(i)
          unskipped = true
          break
        end
      end
      for _, k in ipairs(j.sched_index and j.after_idx or {}) do
        local done = results[k].status == "skipped" or (results[k].resumed and results[k].status == "ok")
        -- (looked for once per plan: the files do not change meanwhile)
        missing[i] = missing[i] or (done and missing_inputs(j)) or nil
        if done and #missing[i] > 0 and writes_one_of(k, missing[i]) then
          unskip(k)
          unskipped = true
        end
      end
    end
  end
  spec_summary()
  raised_summary()
  -- Dependencies between plans that run; those on skipped plans are met.
  -- When the plan that writes the maxima check's baseline runs, the others
  -- wait for it (but those it waits for itself): they are checked against
  -- what it makes, not against what was there before, or nothing.
  local before_baseline = {}
  local function mark(j)
    for _, k in ipairs(j.after_idx or {}) do
      if not before_baseline[jobs[k]] then before_baseline[jobs[k]] = true; mark(jobs[k]) end
    end
  end
  local baseline_runs = baseline_job and baseline_job.sched_index
  if baseline_runs then mark(baseline_job) end
  for _, j in ipairs(baseline_runs and not fs.isfile(baseline) and jobs or {}) do
    if before_baseline[j] and j.sched_index then
      cannot(("the maxima check's baseline %s is not there yet: %s writes it, but %s, which that plan "
        .. "waits for, runs before it and would have nothing to compare with"):format(baseline, baseline_job.key, j.key))
    end
  end
  local waiting = 0
  for _, j in ipairs(jobs) do
    if j.sched_index then
      local after = {}
      for _, k in ipairs(j.after_idx or {}) do
        if jobs[k].sched_index then after[#after + 1] = jobs[k].sched_index end
      end
      if baseline_runs and j ~= baseline_job and not before_baseline[j] then
        local already = false
        for _, k in ipairs(after) do already = already or k == baseline_runs end
        if not already then after[#after + 1] = baseline_runs end
        waiting = waiting + 1
      end
      to_run[j.sched_index].after = after
    end
  end
  if waiting > 0 then
    say(("%d %s for %s, which writes the maxima check's baseline"):format(waiting,
      waiting == 1 and "plan waits" or "plans wait", baseline_job.key))
  end

  journal = journal or open_journal(run_dir)
  local workers = {}
  for _, w in ipairs(self.workers) do workers[#workers + 1] = worker_table(w) end
  -- A run starts when pool:run was called (its plans were read since): a
  -- resume of it, which takes its start from here, gives it the time it had.
  journal:write {
    ev = resume_dir and "run_resume" or "run_start", run_id = run_id, run_dir = run_dir, ordinal = ordinal,
    t = not resume_dir and started or nil,
    recipe = runtime.recipe and runtime.recipe.path, args = runtime.recipe and runtime.recipe.args,
    cwd = path.cwd(), host = sys.hostname(), pid = sys.pid(), boot_id = boot_id(),
    projects = (function() local t = {} for _, p in ipairs(projects) do t[#t + 1] = p.path end return t end)(),
    plans = (function() local t = {} for _, j in ipairs(jobs) do t[#t + 1] = j.key end return t end)(),
    workers = workers,
  }
  for _, r in ipairs(results) do
    if r.status == "skipped" or r.resumed or (resume_dir and r.status == "failed") then
      journal:write { ev = "done", job = r.key, plan = r.plan, status = r.status == "failed" and "failed" or "ok",
                      result = r.result, reason = r.reason, skipped = r.status == "skipped" or nil,
                      resumed = r.resumed or nil, attempts = r.attempts, elapsed = r.elapsed,
                      checks = r.status == "skipped" and (r.checks or (r.report and report.plain_checks(r.report.checks)))
                        or nil }
    end
  end
  local ssh_slots = false -- folders the interrupted run left on SSH hosts
  for _, w in ipairs(self.workers) do
    ssh_slots = ssh_slots or (w.type == "ssh" and prior.slot_dirs[w.name] ~= nil)
  end
  if #remote_orphans > 0 or ssh_slots then
    require("rasrun.ssh").clean_after(self.workers, remote_orphans, prior.slot_dirs, say)
  end

  progress:begin(#jobs, results, self.workers)
  -- rasrun.fail in a check or on_event stops the run as Ctrl-C does; the
  -- recipe then stops as it said, once the reports are written.
  local sched_mod, stopped = require("rasrun.sched"), nil
  local function stop(e)
    -- (a signal, or an earlier stop, stopped it already: that one stands)
    if not stopped and sched_mod.stop(with_message("stopped by the recipe", e)) then
      stopped = e
    end
  end
  local user_event = opts.on_event
  if user_event then
    local handler = user_event
    user_event = function(ev)
      local ok, e = pcall(handler, ev)
      if ok then return end
      if not runtime.is_stop(e) then error(e, 0) end
      stop(e)
    end
  end
  local on_event -- none when nobody listens: no event tables are built
  if user_event and progress.mode ~= "quiet" then
    on_event = function(ev) progress:event(ev); progress:around(user_event, ev) end
  elseif user_event then
    on_event = user_event
  elseif progress.mode ~= "quiet" then
    on_event = function(ev) progress:event(ev) end
  end
  local sres, sig = sched_mod.run {
    run_id = run_id, run_dir = run_dir, journal = journal,
    workers = workers, jobs = to_run,
    check = make_check(opts.check, progress, stop),
    on_event = on_event,
    tick = progress.mode == "live" and function(moving) progress:tick(moving) end or nil,
    keep_scratch = opts.keep_scratch, cancel_wait = opts.cancel_wait, down_grace = opts.down_grace,
  }
  -- The rest (the results merged, run.json, report.html, the history) only
  -- adds to what stays in use until it is written, and a collection of the
  -- run's heap meanwhile would find next to nothing to free (2000 plans: 35
  -- of its 100 ms went to that)
  local run = without_gc(function()
    for i, sr in ipairs(sres) do
      local r = to_run[i]._result
      for k, v in pairs(sr) do r[k] = v end
      if sr.report then r.checks = sr.report.checks end
      -- a resumed run's plan: the attempts the interrupted controller made come first
      local before = prior.history[r.key]
      if before then
        table.move(r.history, 1, #r.history, #before + 1, before)
        r.history, r.attempts = before, #before
      end
    end

    -- a resume of a run that had finished runs nothing: it ended when it did
    local ended = #to_run == 0 and prior.run_end or sys.now()
    local run = setmetatable({ id = run_id, run_dir = run_dir, results = results, started = started,
                               ended = ended, interrupted = sig, workers = self.workers,
                               stopped = stopped and (stopped.message or "rasrun.fail") or nil,
                               counts = { ok = 0, failed = 0, skipped = 0, cancelled = 0 } }, Run)
    for _, r in ipairs(results) do run.counts[r.status] = (run.counts[r.status] or 0) + 1 end
    run.ok = run.counts.failed == 0 and run.counts.cancelled == 0
    run.json_path, run.report_path, run.report_error = report.write(run)
    -- (a resume that runs nothing ends when the run did: its line says so)
    journal:write { ev = "run_end", run_id = run_id, ok = run.ok, counts = run.counts,
                    signal = sig, stopped = run.stopped, t = run.ended }
    journal:close()
    save_history(projects, results)
    progress:finish(run)
    runtime.note_run(run)
    return run
  end)
  if sig then
    -- Ctrl-C / SIGTERM: everything is written; the recipe stops here (and
    -- a recipe that goes on, having caught the stop, runs nothing more).
    runtime.interrupted = sig
    runtime.stop(128 + sig, ("the run was interrupted by %s"):format(signal_name(sig)), true)
  end
  -- everything is written: the recipe stops as it said (a signal aside)
  if stopped then error(stopped, 0) end
  return run
end

return M

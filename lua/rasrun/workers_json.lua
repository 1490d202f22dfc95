-- Workers from ras-commander's RemoteWorkers.json:
--   { "workers": [ { "name": ..., "worker_type": "local" | "ssh" | ..., "enabled": true,
--                    "queue_priority": 0, "cores_total": 8, "cores_per_plan": 4,
--                    "max_parallel_plans": 2, "username": ..., "password": ..., ... } ] }
-- queue_priority becomes the tier; slots are cores_total // cores_per_plan
-- (at least 1, at most max_parallel_plans). The engine comes from
-- "ras_exe_path" (Ras.exe -> windows, .../bin/RasUnsteady -> linux) or from a
-- rasrun "engine" object, else from opts.engine. Passwords never enter a
-- worker table: they go to an environment variable the worker reads
-- (password_env). Keys starting with "_" and ras-commander settings rasrun
-- has no use for (process_priority, session_id, ...) are ignored.
local fs = require "rasrun.fs"
local json = require "rasrun.json"
local sys = require "rasrun.sys"
local pool = require "rasrun.pool"

local M = {}

M.supported = { ["local"] = true, ssh = true }
M.known = { psexec = true, winrm = true, docker = true, slurm = true, aws_ec2 = true, azure_fr = true }

local function engine_from(entry, dflt)
  if type(entry.engine) == "table" then return entry.engine end
  local exe = entry.ras_exe_path
  if type(exe) == "string" and exe ~= "" then
    local norm = exe:gsub("\\", "/")
    local dir, base = norm:match("^(.*)/([^/]+)$")
    if base and base:lower() == "ras.exe" then return { kind = "windows", home = dir } end
    -- the Linux engine sits in its install's bin folder
    if base == "RasUnsteady" and dir:match("/bin$") then
      return { kind = "linux", home = dir:gsub("/bin$", "") }
    end
    if base and base:lower() == "rasunsteady.exe" then
      return nil, ("ras_exe_path %q is Windows' RasUnsteady.exe: Windows HEC-RAS runs through "
        .. "Ras.exe (give its path)"):format(exe)
    end
    return nil, ("ras_exe_path %q is neither .../Ras.exe nor .../bin/RasUnsteady"):format(exe)
  end
  if dflt then return dflt end
  return nil, "no ras_exe_path or engine, and no default engine given"
end

-- Slots, or nil and why when a count is not a whole number of at least 1.
local function slots_of(e)
  for _, k in ipairs({ "cores_total", "cores_per_plan", "max_parallel_plans" }) do
    local v = e[k]
    if v ~= nil and (math.type(v) == nil or v < 1 or v ~= math.floor(v)) then
      return nil, ("%s must be a whole number of at least 1, not %s"):format(k, json.encode(v))
    end
  end
  local slots
  if e.cores_total then slots = math.max(1, math.tointeger(e.cores_total // (e.cores_per_plan or 4)) or 1) end
  if e.max_parallel_plans then slots = math.min(slots or e.max_parallel_plans, e.max_parallel_plans) end
  return slots
end

-- The environment variable that holds a worker's password: one per worker
-- name in the process ("a-b" and "a_b", or "Node1" and "node1", would
-- otherwise share one, and a worker send another host's password).
local password_vars = {} -- variable -> worker name
local function password_var(name)
  local base = "RASRUN_PASSWORD_" .. name:upper():gsub("[^%w]", "_")
  local var, n = base, 1
  while password_vars[var] and password_vars[var] ~= name do
    n = n + 1
    var = base .. "_" .. n
  end
  password_vars[var] = name
  return var
end

-- One entry -> rasrun.worker settings, or nil and why.
local function settings(e, i, opts)
  local name = e.name ~= nil and tostring(e.name) or ("%s_%d"):format(e.worker_type, i)
  local eng, err = engine_from(e, opts.engine)
  if not eng then return nil, ("worker %q: %s"):format(name, err) end
  local slots, serr = slots_of(e)
  if serr then return nil, ("worker %q: %s"):format(name, serr) end
  local tier = e.queue_priority or 0
  if math.type(tier) ~= "integer" or tier < 0 then
    return nil, ("worker %q: queue_priority must be a whole number of at least 0, not %s")
      :format(name, json.encode(tier))
  end
  local cfg = { type = e.worker_type, name = name, tier = tier, engine = eng, slots = slots }
  if e.worker_type == "local" then
    local folder = e.worker_folder
    if type(folder) == "string" and folder:sub(1, 1) == "/" then cfg.workdir = folder end
  else
    cfg.host = e.hostname or e.host
    if not cfg.host then return nil, ("worker %q: no hostname"):format(name) end
    cfg.port = e.port
    cfg.user = e.username
    cfg.identity = e.key_path
    cfg.workdir = e.remote_path or e.worker_folder
    -- rasrun's own SSH settings, which ras-commander's format does not have
    for _, k in ipairs({ "known_hosts", "host_key", "keepalive", "connect_timeout", "io_timeout",
                         "identity", "agent", "passphrase_env", "password_env", "macs", "ciphers" }) do
      if e[k] ~= nil then cfg[k] = e[k] end
    end
    if e.password then
      cfg.password_env = password_var(name)
      sys.setenv(cfg.password_env, tostring(e.password))
    end
  end
  return cfg
end

-- ras-commander's keys for the settings rasrun names otherwise: a message
-- about an entry names the key the file has.
local JSON_KEY = { host = "hostname", user = "username", identity = "key_path", workdir = "remote_path",
                   tier = "queue_priority" }
local function in_json_terms(msg, e)
  for ours, theirs in pairs(JSON_KEY) do
    if e[theirs] ~= nil and e[ours] == nil then
      msg = msg:gsub("'" .. ours .. "'", "'" .. theirs .. "'"):gsub("^" .. ours .. " must", theirs .. " must")
    end
  end
  return msg
end

function M.load(file, opts)
  opts = opts or {}
  local text, rerr = fs.read(file)
  if not text then error("workers_from_json: " .. rerr, 2) end
  local doc, jerr = json.decode(text)
  if not doc then error(("workers_from_json: %s: %s"):format(file, jerr), 2) end
  if type(doc) ~= "table" or type(doc.workers) ~= "table" or (#doc.workers == 0 and next(doc.workers)) then
    error(("workers_from_json: %s has no \"workers\" array%s"):format(file,
      type(doc) == "table" and type(doc.workers) == "table" and " (\"workers\" is an object: a list [...] is wanted)" or ""), 2)
  end
  local workers, skipped, names = {}, {}, {}
  local function skip(msg)
    skipped[#skipped + 1] = msg
    if opts.strict then error(("workers_from_json: %s: %s"):format(file, msg), 3) end
    if not opts.quiet then io.stderr:write(("rasrun: %s: skipping %s\n"):format(file, msg)) end
  end
  for i, e in ipairs(doc.workers) do
    local wt = type(e) == "table" and e.worker_type
    if type(e) ~= "table" then
      skip(("entry %d: not a JSON object"):format(i))
    elseif e.enabled == false or e.enabled == 0 then
      -- disabled in the file: not an error (0 and 1 as Python reads them)
    elseif e.enabled ~= nil and type(e.enabled) ~= "boolean" and type(e.enabled) ~= "number" then
      skip(("worker %q: enabled must be true or false, not %s"):format(tostring(e.name or i), json.encode(e.enabled)))
    elseif type(wt) ~= "string" then
      skip(("entry %d: no worker_type"):format(i))
    elseif not M.supported[wt] then
      skip(("worker %q: worker_type %q is %s (rasrun runs: local, ssh)"):format(tostring(e.name or i), wt,
        M.known[wt] and "not supported by rasrun yet" or "unknown"))
    else
      local cfg, err = settings(e, i, opts)
      if not cfg then skip(err)
      else
        local ok, w = pcall(pool.worker, cfg)
        -- (said as the other skips are: the worker's name, then why)
        if not ok then
          skip(("worker %q: %s"):format(cfg.name, in_json_terms((tostring(w):gsub("^.-rasrun%.worker%b{}: ", "")), e)))
        elseif names[w.name] then
          skip(("worker %q: entry %d has that name too"):format(w.name, names[w.name]))
        else
          workers[#workers + 1], names[w.name] = w, i
        end
      end
    end
  end
  return workers, skipped
end

return M

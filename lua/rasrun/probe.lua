-- Probing workers: can we reach them, is the engine there, how many cores,
-- how much free disk in the work folder. Used by `rasrun workers RECIPE` and
-- rasrun.ssh.probe.
--   probe.worker(w) -> { ok=, worker=, host=, checks = { {name=, ok=, detail=} }, cores=, free_bytes= }
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local path = require "rasrun.path"
local engine = require "rasrun.engine"
local count = require("rasrun.progress").count

local M = {}

local function gib(n) return ("%.1f GiB"):format(n / 2 ^ 30) end

local function probe_local(w)
  local rep = { worker = w.name, host = sys.hostname(), checks = {} }
  local function add(name, ok, detail) rep.checks[#rep.checks + 1] = { name = name, ok = ok, detail = detail } end
  add("connect", true, "this machine")
  local prog = engine.program(w.engine)
  local st = fs.stat(prog)
  add("engine", st ~= nil and st.type == "file" and (st.mode & 73) ~= 0,
    st and (prog .. " is there") or (prog .. ": not found"))
  rep.cores = sys.ncpu()
  add("cores", true, ("%s, %s"):format(count(rep.cores, "core"), count(w.slots, "slot")))
  -- the work folder as a run makes it (one it cannot make fails the worker)
  local dir = w.workdir
  local made, merr = fs.mkdirs(dir)
  if not made then
    add("disk", false, ("cannot make the work folder: %s"):format(merr))
    return rep
  end
  local probe = path.join(dir, (".rasrun-probe-%d"):format(sys.pid()))
  local wrote, werr = fs.write(probe, "")
  if not wrote then
    add("disk", false, ("cannot write in the work folder: %s"):format(werr))
    return rep
  end
  fs.remove(probe)
  rep.free_bytes = fs.free_bytes(dir)
  add("disk", (rep.free_bytes or 0) > 0, rep.free_bytes and (gib(rep.free_bytes) .. " free in " .. dir)
    or ("cannot read free space of " .. dir))
  return rep
end

function M.worker(w)
  local rep
  if w.type == "local" then rep = probe_local(w)
  else rep = require("rasrun.ssh").probe(w) end
  rep.ok = true
  for _, c in ipairs(rep.checks) do rep.ok = rep.ok and c.ok end
  return rep
end

-- Prints one block per worker; returns true when all are usable.
function M.print(workers, out)
  out = out or io.stdout
  local all = true
  for _, w in ipairs(workers) do
    local rep = M.worker(w)
    all = all and rep.ok
    out:write(("%s %s (%s, %s, tier %d, %s)\n"):format(rep.ok and "OK  " or "FAIL", w.name,
      w.type, rep.host or w.host or "?", w.tier, count(w.slots, "slot")))
    for _, c in ipairs(rep.checks) do
      out:write(("     %-8s %s %s\n"):format(c.name, c.ok and "ok  " or "FAIL", c.detail or ""))
    end
  end
  return all
end

return M

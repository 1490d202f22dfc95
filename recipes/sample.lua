-- The sample run: a small HEC-RAS project that rasrun writes itself, computed
-- on a local pool with the simulated engine, then checked like `rasrun check`.
--
--   rasrun run sample [--dir DIR] [--slots N] [--engine linux|windows] [--plans 01,03] [--force]
--
-- DIR (default ./rasrun-sample) receives the project on the first run; later
-- runs skip plans whose results are up to date unless --force.
local rasrun = require "rasrun"

local USAGE = [[
usage: rasrun run sample [--dir DIR] [--slots N] [--engine linux|windows] [--plans LIST] [--force]

Writes a small HEC-RAS project into DIR (default ./rasrun-sample) on the first
run, computes its plans on a local pool with the simulated engine, and checks
the results as `rasrun check` does.

  --dir DIR        where the project is (written when missing)
  --slots N        plans at once (default: the number of cores)
  --engine KIND    linux (RasUnsteady, the default) or windows (Ras.exe)
  --plans LIST     only these plans, in this order: 01,03 (default: all)
  --force          run plans whose results are up to date too (else skipped)]]

local opts = { dir = "rasrun-sample", slots = tostring(rasrun.sys.ncpu()), engine = "linux", plans = "" }
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if k == "help" or arg[i] == "-h" then print(USAGE) return 0
  elseif k == "force" then opts.force = true
  elseif k and opts[k] and arg[i + 1] then opts[k], i = arg[i + 1], i + 1
  elseif k and opts[k] then rasrun.fail(("sample: %s needs a value\n%s"):format(arg[i], USAGE), 2)
  else rasrun.fail(("sample: unknown argument %q\n%s"):format(arg[i], USAGE), 2) end
  i = i + 1
end
local slots = math.tointeger(tonumber(opts.slots))
if not slots or slots < 1 then rasrun.fail(("sample: --slots needs a whole number of at least 1, not %q"):format(opts.slots), 2) end
if opts.engine ~= "linux" and opts.engine ~= "windows" then
  rasrun.fail(("sample: --engine is linux or windows, not %q"):format(opts.engine), 2)
end

local prj_path = rasrun.path.join(opts.dir, "Sample.prj")
-- `rasrun workers sample` probes the pool: no project is written or read
local probing = require("rasrun.runtime").probe_only
local prj, plans = prj_path, nil -- plans nil: all
if not probing and not rasrun.fs.isfile(prj_path) then
  print(("Writing the sample project into %s"):format(opts.dir))
  local ok, err = pcall(rasrun.sample.write, opts.dir)
  if not ok then
    rasrun.fail(("sample: %s (--dir chooses a folder you can write)"):format(tostring(err):gsub("^[^:]*:%d+: ", "")), 2)
  end
end
if not probing then
  local err
  prj, err = rasrun.project.open(prj_path)
  if not prj then rasrun.fail("sample: " .. tostring(err), 2) end
  local given = {}
  for id in opts.plans:gmatch("[^,%s]+") do
    local ok, plan = pcall(prj.plan, prj, id)
    if not ok or not plan then
      rasrun.fail(("sample: --plans: %s has no plan %s"):format(prj_path, id), 2)
    end
    if given[plan.number] then
      rasrun.fail(("sample: --plans: plan %s is listed twice (%s and %s)"):format(plan.number,
        given[plan.number], id), 2)
    end
    given[plan.number] = id
    plans = plans or {}
    plans[#plans + 1] = id
  end
end

local pool = rasrun.pool {
  rasrun.worker { type = "local", name = "here", slots = slots,
                  engine = { kind = opts.engine, home = assert(rasrun.sim.home(opts.engine)) } },
}

local run = pool:run {
  project = prj,
  plans = plans,
  retries = 1,
  timeout = 600,
  force = opts.force,
  check = rasrun.checks.standard { max_volume_error = 1.0 },
}

print()
for _, r in ipairs(run.results) do
  if r.result and rasrun.fs.isfile(r.result) then
    local rep = rasrun.checks.standard {}(r.result)
    print(rep.ok and ("PASS " .. r.result) or ("FAIL %s: %s"):format(r.result, rep.reason))
  else
    print(("FAIL %s: %s"):format(r.key, r.reason or "no result"))
  end
end
return run.ok and 0 or 1

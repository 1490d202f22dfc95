-- The sample run: a small HEC-RAS project that rasrun writes itself, computed
-- on a local pool with the simulated engine, then checked like `rasrun check`.
--
--   rasrun run sample [--dir DIR] [--slots N] [--engine linux|windows] [--force]
--
-- DIR (default ./rasrun-sample) receives the project on the first run; later
-- runs skip plans whose results are up to date unless --force.
local rasrun = require "rasrun"

local opts = { dir = "rasrun-sample", slots = tostring(rasrun.sys.ncpu()), engine = "linux" }
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if k == "force" then opts.force = true
  elseif k and opts[k] then opts[k], i = arg[i + 1], i + 1
  else error(("sample: unknown argument %q (try --dir, --slots, --engine, --force)"):format(arg[i]), 0) end
  i = i + 1
end

local prj_path = rasrun.path.join(opts.dir, "Sample.prj")
if not rasrun.fs.isfile(prj_path) then
  print(("Writing the sample project into %s"):format(opts.dir))
  rasrun.sample.write(opts.dir)
end
local prj = assert(rasrun.project.open(prj_path))

local pool = rasrun.pool {
  rasrun.worker { type = "local", name = "here", slots = assert(math.tointeger(tonumber(opts.slots)),
                    "--slots needs a whole number"),
                  engine = { kind = opts.engine, home = assert(rasrun.sim.home(opts.engine)) } },
}

local run = pool:run {
  project = prj,
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

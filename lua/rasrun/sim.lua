-- The simulated HEC-RAS engine (tests/fake-ras), installed like real HEC-RAS:
--   <sim>/linux-6.6/bin/RasUnsteady, RasGeomPreprocess, libs/...
--   <sim>/windows-6.6/Ras.exe
-- Used by the sample recipe, the tests and benchmarks, and to rehearse a
-- recipe where HEC-RAS is not installed.
local fs = require "rasrun.fs"
local path = require "rasrun.path"
local sys = require "rasrun.sys"

local M = {}

-- The folder holding the simulated installs, or nil, message.
function M.root()
  local cands = {}
  if os.getenv("RASRUN_SIM_ROOT") then cands[#cands + 1] = os.getenv("RASRUN_SIM_ROOT") end
  if _RASRUN_SHARE then
    cands[#cands + 1] = path.join(_RASRUN_SHARE, "hecras-sim")
    cands[#cands + 1] = path.join(_RASRUN_SHARE, "build", "hecras-sim")
  end
  for _, c in ipairs(cands) do
    if fs.isdir(c) then return c end
  end
  return nil, "the simulated HEC-RAS engine is not built (run make), looked in "
    .. table.concat(cands, ", ")
end

-- Engine home for a kind ("linux" or "windows").
function M.home(kind)
  local root, err = M.root()
  if not root then return nil, err end
  return path.join(root, (kind or "linux") .. "-6.6")
end

-- Makes the Linux inputs Windows HEC-RAS would (X.pNN.tmp.hdf, X.bNN, X.xGG).
function M.prepare(prj_path, plan_path)
  local root, err = M.root()
  if not root then return nil, err end
  local r, rerr = sys.run({ path.join(root, "fake-ras"), "prepare", prj_path, plan_path },
    { timeout = 60 })
  if not r then return nil, rerr end
  if r.code ~= 0 then return nil, ("fake-ras prepare %s: %s"):format(plan_path, r.stderr) end
  return true
end

return M

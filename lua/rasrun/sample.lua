-- A small HEC-RAS project written by rasrun itself (not USACE material), for
-- the default run, the tests and the benchmarks. Its plans carry the
-- simulated engine's keys (Fake RAS Mode, Fake RAS Seconds); real HEC-RAS
-- ignores unknown keys.
--
--   sample.write(dir [, opts]) -> path of the .prj
--   opts.name      project name (default "Sample")
--   opts.plans     list of { title=, short=, geom= "g01", flow= "u01",
--                  mode= "ok", seconds= 1.5, version= "6.60",
--                  write_ic= true (a restart file at the end),
--                  restart= "<file>" (the plan's flow starts from it) };
--                  default four plans
--   opts.linux     also write the Linux inputs (tmp.hdf, bNN, xGG) (default true)
local fs = require "rasrun.fs"
local path = require "rasrun.path"

local M = {}

M.default_plans = {
  { title = "100-yr design storm", short = "100yr", geom = "g01", flow = "u01", seconds = 2.0 },
  { title = "500-yr design storm", short = "500yr", geom = "g01", flow = "u02", seconds = 3.0 },
  { title = "Levee breach, 100-yr", short = "breach100", geom = "g02", flow = "u01", seconds = 2.5 },
  { title = "Calibration, June 2024 event", short = "calib2406", geom = "g01", flow = "u03",
    seconds = 1.5 },
}

local function crlf(lines)
  return table.concat(lines, "\r\n") .. "\r\n"
end

-- not waited for on disk: a sample lost in a crash is written again
local function write(file, text)
  local ok, err = fs.write(file, text, { sync = false })
  if not ok then error(err, 3) end
end

local function prj_text(name, title, plans)
  local lines = { "Proj Title=" .. title, "Current Plan=p01", "Default Exp/Contr=0.3,0.1",
                  "English Units" }
  local seen = {}
  for _, kind in ipairs({ "geom", "flow" }) do
    for _, p in ipairs(plans) do
      local id = p[kind]
      if not seen[id] then
        seen[id] = true
        local key = kind == "geom" and "Geom File" or (id:sub(1, 1) == "u" and "Unsteady File" or "Flow File")
        lines[#lines + 1] = key .. "=" .. id
      end
    end
  end
  for i = 1, #plans do lines[#lines + 1] = ("Plan File=p%02d"):format(i) end
  lines[#lines + 1] = "BEGIN DESCRIPTION:"
  lines[#lines + 1] = ("%s: a small project written by rasrun for its sample run."):format(name)
  lines[#lines + 1] = "END DESCRIPTION:"
  return crlf(lines)
end

local function plan_text(p)
  return crlf({
    "Plan Title=" .. p.title,
    "Program Version=" .. (p.version or "6.60"),
    "Short Identifier=" .. (p.short or p.title):sub(1, 24),
    "Simulation Date=02JAN1900,0000,03JAN1900,0000",
    "Geom File=" .. p.geom,
    "Flow File=" .. p.flow,
    "Computation Interval=10SEC",
    "Output Interval=5MIN",
    "Run HTab= 1 ",
    "Run UNet= 1 ",
    "Run PostProcess= 1 ",
    "UNET D1 Cores= 0 ",
    "UNET D2 Cores= " .. (p.cores or 2) .. " ",
    "PS Cores= 0 ",
    "Write Detailed= " .. (p.detailed and 1 or 0) .. " ",
    "Write IC File= " .. (p.write_ic and 1 or 0) .. " ",
    "Fake RAS Mode=" .. (p.mode or "ok"),
    "Fake RAS Seconds=" .. (p.seconds or 1),
  })
end

local function geom_text(id)
  return crlf({ "Geom Title=Sample Creek geometry " .. id, "Program Version=6.60",
                "Viewing Rectangle= 0 , 1000 , 1000 , 0 ", "", "Storage Area=Sample 2D" })
end

local function flow_text(id, restart)
  return crlf({ "Flow Title=Sample Creek hydrograph " .. id, "Program Version=6.60",
                "Use Restart=" .. (restart and "-1 " or " 0 "),
                "Restart Filename=" .. (restart and ".\\" .. restart or ""),
                "Boundary Location=                ,                ,        ,"
                .. "        ,                ,Sample 2D       ,                ,Inflow",
                "Interval=1HOUR", "Flow Hydrograph= 4 ", "     100     800    1200     300" })
end

function M.write(dir, opts)
  opts = opts or {}
  local name = opts.name or "Sample"
  local plans = opts.plans or M.default_plans
  local ok, err = fs.mkdirs(dir)
  if not ok then error(err, 2) end
  for _, p in ipairs(plans) do p.geom, p.flow = p.geom or "g01", p.flow or "u01" end
  local prj = path.join(dir, name .. ".prj")
  write(prj, prj_text(name, opts.title or "rasrun sample: Sample Creek", plans))
  local written = {}
  for i, p in ipairs(plans) do
    local plan_file = path.join(dir, ("%s.p%02d"):format(name, i))
    write(plan_file, plan_text(p))
    if not written[p.geom] then
      written[p.geom] = true
      write(path.join(dir, name .. "." .. p.geom), geom_text(p.geom))
    end
    if not written[p.flow] then
      written[p.flow] = true
      write(path.join(dir, name .. "." .. p.flow), flow_text(p.flow, p.restart))
    end
    if opts.linux ~= false then
      local pok, perr = require("rasrun.sim").prepare(prj, plan_file)
      if not pok then error(perr, 2) end
    end
  end
  return prj
end

return M

-- rasrun.project on real HEC-RAS project files, the sample project and broken input.
local lu = require "luaunit"
local project = require "rasrun.project"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local H = require "helpers"

TestProject = {}

function TestProject:tearDown() H.cleanup() end

local MUNCIE = H.data .. "/HEC-RAS-AUTO/Example_Projects_6_6/Muncie.prj"
local EX1 = H.data .. "/HEC-RAS-AUTO/tmp_ex1fresh_failed/EX1.prj"

function TestProject:test_muncie_crlf_project()
  local prj = assert(project.open(MUNCIE))
  lu.assertEquals(prj.title, "Muncie 2D Flow Area")
  lu.assertEquals(prj.name, "Muncie")
  lu.assertEquals(prj.current_plan, "p04")
  lu.assertEquals(prj.units, "English")
  lu.assertEquals(prj.plan_ids, { "p01", "p03", "p04" })
  lu.assertEquals(prj.geom_ids, { "g01", "g02", "g04" })
  local p = prj:plan("04")
  lu.assertEquals(p.title, "Unsteady Run with 2D 50ft User n Value R")
  lu.assertEquals(p.short_id, "50ft User n Regions")
  lu.assertEquals(p.geometry.id, "g04")
  lu.assertEquals(p.geometry.title, "Muncie Geometry - 50ft User n Value Regi")
  lu.assertStrContains(p.geometry.hdf, "Muncie.g04.hdf")
  lu.assertEquals(p.flow.id, "u01")
  lu.assertEquals(p.flow_kind, "unsteady")
  lu.assertEquals(p.cores.d2, 6)
  lu.assertEquals(p.program_version, "5.10")
  lu.assertFalse(p.write_detailed)
  lu.assertEquals(p.simulation.text, "02JAN1900,0000,02JAN1900,2400")
  lu.assertEquals(p.simulation.stop - p.simulation.start, 24 * 3600)
end

function TestProject:test_plans_listed_but_missing_are_marked()
  local prj = assert(project.open(MUNCIE))
  local plans = prj:plans()
  lu.assertEquals(#plans, 3)
  lu.assertTrue(plans[1].missing)
  lu.assertStrContains(plans[1].error, "plan p01 is listed in the project but its file Muncie.p01 is missing")
  lu.assertEquals(plans[1]:result_state(), "missing")
  lu.assertFalse(plans[3].missing)
  local inputs, missing = plans[1]:inputs("windows")
  lu.assertEquals(#inputs, 0)
  lu.assertEquals(#missing, 1)
end

function TestProject:test_plan_ids_in_any_form()
  local prj = assert(project.open(MUNCIE))
  lu.assertIs(prj:plan("p04"), prj:plan(4))
  lu.assertIs(prj:plan("04"), prj:plan("P04"))
  local none, err = prj:plan("07")
  lu.assertNil(none)
  lu.assertStrContains(err, "no plan p07")
  for _, bad in ipairs({ "x", "1.5", 100, "p100" }) do
    lu.assertErrorMsgContains(('Muncie.prj: "%s" is not a plan id (plans are numbered 01 to 99: "04", "p04" or 4)')
      :format(bad), function() prj:plan(bad) end)
  end
end

function TestProject:test_upper_case_extensions()
  local prj = assert(project.open(EX1))
  local p = prj:plan("01")
  lu.assertFalse(p.missing)
  lu.assertStrContains(p.file, "EX1.P01")
  lu.assertEquals(p.title, "Existing Conditions Run")
  lu.assertEquals(p.short_id, "Existing")
  lu.assertEquals(p.flow_kind, "steady")
  -- geometry and flow files are not part of this sample: they are missing
  local _, missing = p:inputs("windows")
  lu.assertEquals(missing, { "EX1.g01", "EX1.f01" })
  -- and so is the plan's result: it cannot be up to date
  local st, why = p:result_state()
  lu.assertEquals(st, "missing")
  lu.assertStrContains(why, "EX1.P01: its file EX1.g01 is missing")
end

-- Sediment and water quality data a plan uses are inputs and sources;
-- quasi-steady flows are the project's flows.
function TestProject:test_sediment_water_quality_and_quasi_steady_files()
  local d = H.tmpdir("prj")
  fs.write(d .. "/M.prj", "Proj Title=Mobile bed\r\nGeom File=g01\r\nQuasiSteady File=q01\r\n"
    .. "Sediment File=s01\r\nPlan File=p01\r\n")
  fs.write(d .. "/M.p01", "Plan Title=Sediment\r\nGeom File=g01\r\nFlow File=q01\r\n"
    .. "Sediment File=s01\r\nWater Quality File=w01\r\n")
  fs.write(d .. "/M.g01", "Geom Title=Bed\r\n")
  fs.write(d .. "/M.q01", "Flow Title=Quasi\r\n")
  fs.write(d .. "/M.s01", "Sediment Title=Sand\r\n")
  local prj = assert(project.open(d .. "/M.prj"))
  lu.assertEquals(#prj:flows(), 1)
  lu.assertEquals(prj:flows()[1].kind, "quasi-steady")
  local p = prj:plan("01")
  local inputs, missing = p:inputs("windows")
  lu.assertEquals(inputs, { "M.prj", "M.p01", "M.g01", "M.q01", "M.s01" })
  lu.assertEquals(missing, { "M.w01" })
  local sources = {}
  for _, f in ipairs(p:sources()) do sources[#sources + 1] = f:match("[^/]+$") end
  lu.assertEquals(sources, { "M.p01", "M.g01", "M.q01", "M.s01" })
end

-- The DSS files a flow's boundaries read (Use DSS=True) are inputs, in
-- their subfolders; a missing one is named; one on a Windows drive is left
-- to the engine host.
function TestProject:test_dss_files_the_boundaries_read_are_inputs()
  local d = H.tmpdir("prj")
  H.project(d, { { title = "gauged", seconds = 0.05 } })
  H.dss_boundaries(d)
  local prj = assert(project.open(d .. "/Sample.prj"))
  local p = prj:plan("01")
  lu.assertEquals(p.flow.dss, { "hydrology/inflow.dss", "lateral.dss", "-n.dss" })
  lu.assertEquals(p.flow.dss_outside, { "C:\\shared\\far.dss" })
  local inputs, missing = p:inputs("windows")
  lu.assertEquals(inputs, { "Sample.prj", "Sample.p01", "Sample.g01", "Sample.u01",
                            "hydrology/inflow.dss", "lateral.dss", "-n.dss" })
  lu.assertEquals(missing, {})
  local sources = {}
  for _, f in ipairs(p:sources()) do sources[#sources + 1] = f:sub(#d + 2) end
  lu.assertItemsEquals(sources, { "Sample.p01", "Sample.g01", "Sample.u01", "hydrology/inflow.dss",
                                  "lateral.dss", "-n.dss", "Sample.p01.tmp.hdf", "Sample.b01" })
  -- the DSS file the plan writes is not a source (every run makes it newer
  -- than the result), but one of the same name elsewhere that it reads is
  local p01 = H.read(d .. "/Sample.p01")
  for dss, without in pairs({ ["lateral.dss"] = "lateral.dss", [".\\output\\lateral.dss"] = false,
                              ["C:\\runs\\lateral.dss"] = "lateral.dss" }) do
    assert(fs.write(d .. "/Sample.p01", p01 .. "DSS File=" .. dss .. "\r\n"))
    local names = {}
    for _, f in ipairs(assert(project.open(d .. "/Sample.prj")):plan("01"):sources()) do
      names[f:sub(#d + 2)] = true
    end
    lu.assertEquals(names["lateral.dss"], not without or nil, dss)
  end
  assert(fs.write(d .. "/Sample.p01", p01))
  -- spelt in another case (Windows does not mind), the file on disk is staged
  fs.write(d .. "/Sample.u01", "Flow Title=x\r\nDSS File=.\\Hydrology\\Inflow.DSS\r\nUse DSS=True\r\n")
  prj = assert(project.open(d .. "/Sample.prj"))
  inputs, missing = prj:plan("01"):inputs("windows")
  lu.assertEquals(inputs[5], "hydrology/inflow.dss")
  lu.assertEquals(missing, {})
  H.dss_boundaries(d)
  fs.remove(d .. "/lateral.dss")
  prj = assert(project.open(d .. "/Sample.prj"))
  _, missing = prj:plan("01"):inputs("windows")
  lu.assertEquals(missing, { "lateral.dss (a DSS file Sample.u01 reads)" })
  -- the Linux engine has the boundary data in the .b01: not required there
  _, missing = prj:plan("01"):inputs("linux")
  lu.assertEquals(missing, {})
end

-- Gridded meteorological data (rain on grid) the flow names are inputs and
-- sources, where they are there; the plan's own output DSS file is not sent
-- (the engine writes a new one, which does not come back).
function TestProject:test_gridded_met_data_are_inputs_and_the_output_dss_is_not()
  local d = H.tmpdir("prj")
  H.project(d, { { title = "rain on grid", seconds = 0.05 } })
  assert(fs.write(d .. "/Sample.u01", table.concat({ "Flow Title=Rain", "Precipitation Mode=Enable",
    "Met BC=Precipitation|Mode=Gridded", "Met BC=Precipitation|Gridded Source=DSS",
    "Met BC=Precipitation|Gridded DSS Filename=.\\Precipitation\\precip.2018.09.dss",
    "Met BC=Precipitation|Gridded DSS Pathname=/SHG/BALD/PRECIP///NEXRAD/",
    "Met BC=Wind Speed|Gridded DSS Filename=.\\Met\\wind.dss", "" }, "\r\n")))
  assert(fs.mkdirs(d .. "/Precipitation"))
  assert(fs.write(d .. "/Precipitation/precip.2018.09.dss", "DSS precipitation"))
  local p01 = H.read(d .. "/Sample.p01")
  assert(fs.write(d .. "/Sample.p01", p01 .. "DSS File=Sample.dss\r\n"))
  assert(fs.write(d .. "/Sample.dss", "DSS output of earlier runs"))
  local p = assert(project.open(d .. "/Sample.prj")):plan("01")
  lu.assertEquals(p.flow.met, { "Precipitation/precip.2018.09.dss", "Met/wind.dss" })
  local inputs, missing = p:inputs("windows")
  lu.assertEquals(inputs, { "Sample.prj", "Sample.p01", "Sample.g01", "Sample.u01",
                            "Precipitation/precip.2018.09.dss" }) -- wind.dss is not there
  lu.assertEquals(missing, {})
  local sources = {}
  for _, f in ipairs(p:sources()) do sources[#sources + 1] = f:sub(#d + 2) end
  lu.assertItemsEquals(sources, { "Sample.p01", "Sample.g01", "Sample.u01", "Precipitation/precip.2018.09.dss",
                                  "Sample.p01.tmp.hdf", "Sample.b01" })
  -- gridded precipitation in use is required; the wind left unused is not
  fs.remove(d .. "/Precipitation/precip.2018.09.dss")
  p = assert(project.open(d .. "/Sample.prj")):plan("01")
  local _, miss = p:inputs("windows")
  lu.assertEquals(miss, { "Precipitation/precip.2018.09.dss (the gridded precipitation Sample.u01 reads)" })
  -- with precipitation off, a file it names is not needed
  local u01 = H.read(d .. "/Sample.u01"):gsub("Precipitation Mode=Enable", "Precipitation Mode=Disable")
  assert(fs.write(d .. "/Sample.u01", u01))
  _, miss = assert(project.open(d .. "/Sample.prj")):plan("01"):inputs("windows")
  lu.assertEquals(miss, {})
end

-- A project name may hold dots (only ".prj" is the extension), and files
-- saved with a UTF-8 byte order mark read as without.
function TestProject:test_dotted_names_and_byte_order_marks()
  local d = H.tmpdir("prj")
  local bom = "\239\187\191"
  fs.write(d .. "/Bald.Eagle.prj", bom .. "Proj Title=Bald Eagle Creek\r\nPlan File=p01\r\n")
  fs.write(d .. "/Bald.Eagle.p01", bom .. "Plan Title=Dam break\r\nGeom File=g01\r\nFlow File=u01\r\n")
  fs.write(d .. "/Bald.Eagle.g01", "Geom Title=Creek\r\n")
  fs.write(d .. "/Bald.Eagle.u01", "Flow Title=Break\r\n")
  local prj = assert(project.open(d .. "/Bald.Eagle.prj"))
  lu.assertEquals(prj.name, "Bald.Eagle")
  lu.assertEquals(prj.title, "Bald Eagle Creek")
  local p = prj:plan("01")
  lu.assertEquals(p.title, "Dam break")
  local inputs, missing = p:inputs("windows")
  lu.assertEquals(inputs, { "Bald.Eagle.prj", "Bald.Eagle.p01", "Bald.Eagle.g01", "Bald.Eagle.u01" })
  lu.assertEquals(missing, {})
end

-- The "Key=Value" lines of HEC-RAS text files: CR, LF or CRLF ends, blank
-- lines, blanks around values (not keys), the first value of a key kept,
-- lines without a key as flags, and a line that starts with "=".
function TestProject:test_key_value_lines()
  local keys = require "rasrun.keys"
  local text = "Proj Title=Two\r\n\r\nPlan File= p01 \rPlan File=p02\nEnglish Units  \n" ..
               "  indented flag\n=odd\nEmpty=\n Key With Blank =\tv\t\nSI Units\nSI Units=later\n" ..
               "Vt=\vx\nPlan File=p03"
  local list, first = keys.parse(text)
  lu.assertEquals(list, { { "Proj Title", "Two" }, { "Plan File", "p01" }, { "Plan File", "p02" },
    { "Empty", "" }, { " Key With Blank ", "v" }, { "SI Units", "later" }, { "Vt", "\vx" }, { "Plan File", "p03" } })
  lu.assertEquals(first, { ["Proj Title"] = "Two", ["Plan File"] = "p01", ["English Units"] = true,
    ["=odd"] = true, Empty = "", [" Key With Blank "] = "v", ["SI Units"] = true, Vt = "\vx" })
  local none, only = keys.parse(text, true)
  lu.assertEquals(none, {})
  lu.assertEquals(only, first)
  lu.assertEquals({ keys.parse("") }, { {}, {} })
end

-- What a project's files say the way HEC-RAS and people write them: a plan
-- listed twice is one plan; blanks around values ("Plan File= p03") do not
-- count; an empty "Flow File=" is no flow file, not a steady flow.
function TestProject:test_plans_listed_twice_blanks_and_empty_values()
  local d = H.tmpdir("prj")
  fs.write(d .. "/Twice.prj", "Proj Title=Twice\r\nPlan File=p01\r\nPlan File= p02\r\n" ..
    "Plan File=P01\r\nGeom File=g01\r\nUnsteady File=u01\r\n")
  fs.write(d .. "/Twice.p01", "Plan Title=One\r\nGeom File= g01\r\nFlow File=u01 \r\n")
  fs.write(d .. "/Twice.p02", "Plan Title=Two\r\nGeom File=g01\r\nFlow File=\r\n")
  fs.write(d .. "/Twice.g01", "Geom Title=G\r\n")
  fs.write(d .. "/Twice.u01", "Flow Title=U\r\n")
  local prj = assert(project.open(d .. "/Twice.prj"))
  lu.assertEquals(prj.plan_ids, { "p01", "p02" })
  lu.assertEquals(#prj:plans(), 2)
  local inputs, missing = prj:plan("01"):inputs("windows")
  lu.assertEquals(inputs, { "Twice.prj", "Twice.p01", "Twice.g01", "Twice.u01" })
  lu.assertEquals(missing, {})
  local p2 = prj:plan("02")
  lu.assertTrue(p2.broken)
  lu.assertStrContains(p2.error, "no Flow File= line")
end

-- A long flow file (inline hydrographs run to megabytes) is read whole: a
-- DSS file its last boundary reads is an input; a restart file in a
-- subfolder is found there; a Windows-1252 folder name in the flow file
-- finds the folder a copy from Windows made in UTF-8; the unsteady flow's
-- HDF (imported met data) is an input and a source.
function TestProject:test_long_flows_restart_folders_cp1252_names_and_flow_hdf()
  local d = H.tmpdir("prj")
  H.project(d, { { title = "long", seconds = 0.05 } })
  local rows = {}
  for i = 1, 9 * 1024 * 1024 // 80 + 1 do rows[i] = ("%10.2f"):rep(8):format(i, i, i, i, i, i, i, i) end
  assert(fs.write(d .. "/Sample.u01", table.concat({ "Flow Title=Long", "Use Restart=-1",
    "Restart Filename=.\\Restart\\Sample.p01.02JAN1900 1200.rst",
    "Boundary Location=Creek,Reach,100,,,,,", "Flow Hydrograph= " .. #rows, table.concat(rows, "\r\n"),
    "DSS File=.\\Hidrolog\237a\\Caudal.dss", "Use DSS=True", "" }, "\r\n")))
  assert(fs.mkdirs(d .. "/Restart"))
  assert(fs.write(d .. "/Restart/Sample.p01.02JAN1900 1200.rst", "restart"))
  assert(fs.mkdirs(d .. "/Hidrolog\195\173a"))
  assert(fs.write(d .. "/Hidrolog\195\173a/Caudal.dss", "DSS"))
  assert(fs.write(d .. "/Sample.u01.hdf", "flow HDF"))
  local p = assert(project.open(d .. "/Sample.prj")):plan("01")
  local inputs, missing = p:inputs("windows")
  lu.assertEquals(missing, {})
  lu.assertEquals(inputs, { "Sample.prj", "Sample.p01", "Sample.g01", "Sample.u01", "Sample.u01.hdf",
                            "Restart/Sample.p01.02JAN1900 1200.rst", "Hidrolog\195\173a/Caudal.dss" })
  local sources = {}
  for _, f in ipairs(p:sources()) do sources[#sources + 1] = f:sub(#d + 2) end
  lu.assertItemsEquals(sources, { "Sample.p01", "Sample.g01", "Sample.u01", "Sample.u01.hdf",
    "Restart/Sample.p01.02JAN1900 1200.rst", "Hidrolog\195\173a/Caudal.dss", "Sample.p01.tmp.hdf",
    "Sample.b01" })
  -- a missing one is named in UTF-8, as the terminal shows it
  fs.rmtree(d .. "/Hidrolog\195\173a")
  _, missing = assert(project.open(d .. "/Sample.prj")):plan("01"):inputs("windows")
  lu.assertEquals(missing, { "Hidrolog\195\173a/Caudal.dss (a DSS file Sample.u01 reads)" })
  -- a restart file not in its subfolder is looked for in the project
  -- folder, where a plan this one waits for writes it
  fs.rmtree(d .. "/Restart")
  p = assert(project.open(d .. "/Sample.prj")):plan("01")
  lu.assertEquals(p:restart(), "Sample.p01.02JAN1900 1200.rst")
  inputs = p:inputs("windows", { waits = true })
  lu.assertEquals(inputs[#inputs], "Sample.p01.02JAN1900 1200.rst")
end

function TestProject:test_sample_inputs_outputs_and_result_state()
  local d = H.tmpdir("prj")
  local prj = assert(project.open(H.project(d)))
  local p = prj:plan("01")
  lu.assertEquals(p:inputs("windows"), { "Sample.prj", "Sample.p01", "Sample.g01", "Sample.u01" })
  lu.assertEquals(p:inputs("linux"), { "Sample.p01.tmp.hdf", "Sample.b01", "Sample.x01" })
  local own, geom = p:outputs("windows")
  lu.assertEquals(own[1], "Sample.p01.computeMsgs.txt")
  lu.assertEquals(geom, { "Sample.x01", "Sample.c01", "Sample.g01.hdf" })
  lu.assertEquals((p:result_state()), "none")
  -- a result newer than the inputs is current; touching the geometry makes it stale
  local now = sys.now()
  fs.write(p:result_path(), "x")
  fs.touch(p:result_path(), now)
  for _, src in ipairs(p:sources()) do fs.touch(src, now - 100) end
  lu.assertEquals((p:result_state()), "current")
  fs.touch(p.geometry.file, now + 5)
  local st, why = p:result_state()
  lu.assertEquals(st, "stale")
  lu.assertStrContains(why, "Sample.g01 is newer than the result")
end

function TestProject:test_broken_inputs_give_clear_errors()
  local d = H.tmpdir("prj")
  local prj, err = project.open(d .. "/none.prj")
  lu.assertNil(prj)
  lu.assertStrContains(err, "none.prj: no such project file")
  fs.write(d .. "/garbage.prj", "\0\1\2\3binary\0")
  prj, err = project.open(d .. "/garbage.prj")
  lu.assertNil(prj)
  lu.assertStrContains(err, "binary data, not a HEC-RAS text file")
  fs.write(d .. "/empty.prj", "hello\nworld\n")
  prj, err = project.open(d .. "/empty.prj")
  lu.assertNil(prj)
  lu.assertStrContains(err, "not a HEC-RAS project file")
  -- a plan file given for the project is not a project of no plans
  fs.write(d .. "/P.p01", "Plan Title=a plan\r\nGeom File=g01\r\nFlow File=u01\r\n")
  prj, err = project.open(d .. "/P.p01")
  lu.assertNil(prj)
  lu.assertStrContains(err, "P.p01: not a HEC-RAS project file (no Proj Title, no plans) (a plan file?)")
  -- a plan file without Geom File= is broken, not a crash
  fs.write(d .. "/B.prj", "Proj Title=B\r\nPlan File=p01\r\nPlan File=p02\r\n")
  fs.write(d .. "/B.p01", "Plan Title=no geometry\r\nFlow File=u01\r\n")
  fs.write(d .. "/B.p02", "\0\0\0\0")
  prj = assert(project.open(d .. "/B.prj"))
  local p1, p2 = prj:plan("01"), prj:plan("02")
  lu.assertTrue(p1.broken)
  lu.assertStrContains(p1.error, "no Geom File= line")
  lu.assertTrue(p2.missing)
  lu.assertStrContains(p2.error, "binary data")
  -- a folder where the project file should be, a named pipe as a plan file
  -- (reading it would wait for a writer forever)
  prj, err = project.open(d)
  lu.assertNil(prj)
  lu.assertStrContains(err, d .. ": not a file")
  fs.write(d .. "/F.prj", "Proj Title=F\r\nPlan File=p01\r\n")
  lu.assertEquals(sys.run({ "mkfifo", d .. "/F.p01" }).code, 0)
  local p = assert(project.open(d .. "/F.prj")):plan("01")
  lu.assertTrue(p.missing)
  lu.assertStrContains(p.error, "F.p01: not a file (a named pipe)")
  local _, missing = p1:inputs("linux")
  lu.assertStrContains(missing[1], "no Geom File= line")
  -- a flow file that cannot be read makes its plans broken, naming it; a
  -- Plan File= line that names no plan (in the description, say) is no plan
  fs.write(d .. "/C.prj", "Proj Title=C\r\nPlan File=p01\r\nPlan File=\r\n"
    .. "BEGIN DESCRIPTION:\r\nPlan File=p07 is the calibration run\r\nEND DESCRIPTION:\r\n")
  fs.write(d .. "/C.p01", "Plan Title=one\r\nGeom File=g01\r\nFlow File=u01\r\n")
  fs.write(d .. "/C.g01", "Geom Title=g\r\n")
  fs.write(d .. "/C.u01", "Flow Title=u\r\n\0damaged\r\n")
  prj = assert(project.open(d .. "/C.prj"))
  lu.assertEquals(#prj:plans(), 1)
  local c1 = prj:plan("01")
  lu.assertTrue(c1.broken)
  lu.assertEquals(c1.error, "plan p01: flow file: " .. d .. "/C.u01: binary data, not a HEC-RAS text file")
  lu.assertEquals(c1:result_state(), "missing")
end

-- Plan files are asked of the disk all at once when the page cache has let
-- them go (fs.prefetch, used by prj:plans()), and not at all when the first
-- one is still cached. dd with iflag=nocache drops a file from the cache.
function TestProject:test_plan_files_are_read_ahead_when_not_cached()
  local d = H.tmpdir("prefetch")
  local prj = project.open(H.project(d, { { title = "a" }, { title = "b" }, { title = "c" } }))
  local files = {}
  for _, id in ipairs(prj.plan_ids) do files[#files + 1] = prj:file(id) end
  lu.assertEquals(#files, 3)
  lu.assertEquals(fs.prefetch({ d .. "/missing", d .. "/also missing" }), 0)
  local function resident(f)
    local r = sys.run({ "fincore", "--noheadings", "--bytes", "--output", "RES", f }, { timeout = 10 })
    lu.assertEquals(r.code, 0, r.stderr)
    return tonumber(r.stdout:match("%d+"))
  end
  local function drop()
    sys.run({ "sync" }, { timeout = 60 })
    for _, f in ipairs(files) do
      local r = sys.run({ "dd", "if=" .. f, "iflag=nocache", "count=0", "status=none" }, { timeout = 10 })
      lu.assertEquals(r.code, 0, r.stderr)
    end
  end
  -- (the page cache can take the first file back between the look and the
  -- prefetch, on a busy machine: up to three tries)
  local asked
  for try = 1, 3 do
    drop()
    if try == 1 and resident(files[1]) ~= 0 then lu.skip("this file system keeps the files cached") end
    asked = fs.prefetch(files)
    if asked == 3 then break end
  end
  lu.assertEquals(asked, 3)
  H.wait_for(function() return resident(files[3]) > 0 end, 5, "the third file in the cache")
  drop()
  assert(fs.read(files[1])) -- the first is cached again: the rest are taken to be too
  lu.assertEquals(fs.prefetch(files), 0)
  drop()
  local plans = prj:plans() -- read ahead, then parsed as ever
  lu.assertEquals(#plans, 3)
  lu.assertEquals(plans[3].title, "c")
end

-- fs.mkdirs_spread: the folder and its parents are made, the last under a
-- name of its own first (renamed: nothing of that name is left); an existing
-- folder is kept as it is; a file in the way is an error naming the path.
function TestProject:test_mkdirs_spread()
  local d = H.tmpdir("spread")
  lu.assertTrue(fs.mkdirs_top(d .. "/run"))
  lu.assertTrue(fs.mkdirs_spread(d .. "/run/deep/logs"))
  lu.assertTrue(fs.isdir(d .. "/run/deep/logs"))
  lu.assertEquals(fs.list(d .. "/run/deep"), { "logs" })
  fs.write(d .. "/run/deep/logs/a.log", "kept")
  lu.assertTrue(fs.mkdirs_spread(d .. "/run/deep/logs"))
  lu.assertEquals(fs.read(d .. "/run/deep/logs/a.log"), "kept")
  fs.write(d .. "/run/file", "x")
  local ok, err = fs.mkdirs_spread(d .. "/run/file")
  lu.assertNil(ok)
  lu.assertStrContains(err, d .. "/run/file")
  lu.assertEquals(#fs.list(d .. "/run"), 2) -- deep, file: no folder left behind
end

-- path.join: missing or empty parts are skipped (a recipe's `cond and "sub"`
-- too), an absolute part starts over, one slash between parts.
function TestProject:test_path_join()
  local join = require("rasrun.path").join
  lu.assertEquals(join("a", "b"), "a/b")
  lu.assertEquals(join("a/", "b"), "a/b")
  lu.assertEquals(join("a", "b", "c", "d", "e"), "a/b/c/d/e")
  lu.assertEquals(join("", "b"), "b")
  lu.assertEquals(join(nil, "b", nil, "c"), "b/c")
  lu.assertEquals(join("a", false, "c"), "a/c")
  lu.assertEquals(join(false, "b"), "b")
  lu.assertEquals(join("a", "/b", "c"), "/b/c")
  lu.assertEquals(join("/", "x"), "/x")
  lu.assertEquals(join(), "")
  lu.assertEquals(join(nil, false, ""), "")
end

-- HEC dates: any case of month, hour 24 only as the end of a day, and only
-- days the month has.
function TestProject:test_hec_dates()
  local hecdate = require "rasrun.hecdate"
  lu.assertEquals(hecdate.parse("02Jan1900 2400"), hecdate.parse("03JAN1900 0000"))
  lu.assertEquals(hecdate.parse("29FEB2024 12:30:15"), hecdate.naive(2024, 2, 29, 12, 30, 15))
  -- leap years as the Gregorian calendar has them: 2000, not 1900 nor 2100
  lu.assertEquals(hecdate.parse("29FEB2000") + 86400, hecdate.parse("01MAR2000"))
  lu.assertEquals(hecdate.parse("31dec2099 2400"), hecdate.parse("01JAN2100 0000"))
  for _, bad in ipairs({ "02JAN1900 24:30", "31FEB2024", "29FEB2023", "00JAN2024", "31APR2024 0000",
                         "29FEB1900", "29FEB2100", "32JAN2024", "31JUN2024" }) do
    local t, err = hecdate.parse(bad)
    lu.assertNil(t, bad)
    lu.assertStrContains(err, bad)
  end
  local a, b = hecdate.parse_window("17MAR2026 15:26:14 to 17MAR2026 15:27:02")
  lu.assertEquals(b - a, 48)
end

-- The standard checks: verdicts on every real HEC-RAS file and on each
-- failure mode of the simulated engine.
local lu = require "luaunit"
local checks = require "rasrun.checks"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local H = require "helpers"

TestChecks = {}

function TestChecks:tearDown() H.cleanup() end

local std = checks.standard {}

local function reason(rep) return rep.reason or "" end

-- The expected verdict of each real file (SOURCES.md says what each is).
local REAL = {
  { "pyHMT2D/Muncie2DOnly_SI.p01.hdf", true },      -- 5.0.7 unsteady 2D
  { "pyHMT2D/backwater_curve.p01.hdf", true },      -- 5.0.7 unsteady 2D
  { "rashdf/FLODENCR.p01.hdf", true },              -- 6.5 steady
  { "HEC-RAS-AUTO/Example_Projects_6_6/EX1.p01.hdf", true }, -- 6.6 steady
  { "rashdf/BaldEagleDamBrk.p18.hdf", false, "no Solution attribute: Results/Unsteady/Summary is missing" },
  { "HEC-RAS-AUTO/tmp_ex1fresh_failed/EX1.p01.hdf", false, "Unhandled Exception: System.UnauthorizedAccessException" },
  { "HEC-RAS-AUTO/Example_Projects_6_6/Muncie.g04.hdf", false, "not a HEC-RAS result file" },
}

function TestChecks:test_real_files_have_the_expected_verdicts()
  for _, case in ipairs(REAL) do
    local rep = std(H.data .. "/" .. case[1])
    lu.assertEquals(rep.ok, case[2], case[1] .. ": " .. reason(rep))
    if case[3] then lu.assertStrContains(reason(rep), case[3]) end
  end
end

function TestChecks:test_507_volume_accounting_is_read()
  local r = require("rasrun.results").read(H.data .. "/pyHMT2D/Muncie2DOnly_SI.p01.hdf")
  lu.assertEquals(r.volume.layout, "5.0.7")
  lu.assertAlmostEquals(r.volume.error_percent, 0.000117591, 1e-9)
  lu.assertEquals(r.run_window.text, "28FEB2021 12:04:48 to 28FEB2021 12:04:53")
  -- a tighter limit than the file's error fails, naming both numbers
  local tight = checks.standard { max_volume_error = 0.0001 }(H.data .. "/pyHMT2D/Muncie2DOnly_SI.p01.hdf")
  lu.assertFalse(tight.ok)
  lu.assertStrContains(tight.reason, "volume accounting error 0.0001176% exceeds 0.0001%")
  -- the error must stay below the limit: one equal to it fails, said so
  local at = checks.standard { max_volume_error = r.volume.error_percent }(H.data .. "/pyHMT2D/Muncie2DOnly_SI.p01.hdf")
  lu.assertFalse(at.ok)
  lu.assertStrContains(at.reason, "reaches the limit of")
end

function TestChecks:test_steady_volume_is_not_applicable()
  local rep = std(H.data .. "/rashdf/FLODENCR.p01.hdf")
  lu.assertEquals(rep.checks[3].name, "volume")
  lu.assertStrContains(rep.checks[3].detail, "not applicable")
end

function TestChecks:test_maxima_on_a_real_2d_result()
  local f = H.data .. "/rashdf/BaldEagleDamBrk.p18.hdf"
  local ok, detail = checks.maxima { area = "BaldEagleCr", min = 0, max = 2000 }({ path = f })
  lu.assertTrue(ok, detail)
  -- 3359 cells (the geometry's Cell Count); the 588 boundary ghost cells
  -- after them in the results read 0 and are left out
  lu.assertStrContains(detail, "BaldEagleCr (3359 cells)")
  ok, detail = checks.maxima { min = 500, max = 800 }({ path = f })
  lu.assertTrue(ok, detail)
  lu.assertStrContains(detail, "Upper 2D Area (1066 cells)")
  ok, detail = checks.maxima { area = "BaldEagleCr", max = 100 }({ path = f })
  lu.assertFalse(ok)
  lu.assertStrContains(detail, "above 100.000")
  ok = checks.maxima { baseline = f, tolerance = 0 }({ path = f })
  lu.assertTrue(ok)
  -- an area the file does not have: named, with those it has
  ok, detail = checks.maxima { area = "Bald Eagle", max = 100 }({ path = f })
  lu.assertFalse(ok)
  lu.assertEquals(detail, 'no 2D area "Bald Eagle" with a maximum water surface in the result '
    .. "(its areas: BaldEagleCr, Upper 2D Area)")
end

-- Runs the simulated Linux engine on a one-plan project in the given mode.
local function simulate(mode)
  local d = H.tmpdir("chk")
  H.project(d, { { title = mode, mode = mode, seconds = 0.05 } })
  local t0 = sys.now()
  local r = sys.run({ H.sim() .. "/bin/RasUnsteady", "Sample.p01.tmp.hdf", "x01" }, { cwd = d, timeout = 30 })
  return d .. "/Sample.p01.tmp.hdf", r, t0
end

function TestChecks:test_simulated_failure_modes()
  local cases = {
    ok = { true }, unstable = { false, 'Solution: "Unsteady Went Unstable" (unstable at 02JAN1900 13:20:00)' },
    volume = { false, "volume accounting error 5.3% exceeds 1%" },
    silent = { false, "ERROR: Unsteady flow computations did not converge" },
    noresult = { false, "plan data but no results: the engine wrote none" },
    crash = { false, "plan data but no results: the engine wrote none" },
  }
  for mode, want in pairs(cases) do
    local file, r, t0 = simulate(mode)
    -- as the scheduler checks it: under the name of the result it becomes
    local rep = std(file, { since = t0, name = (file:gsub("%.tmp%.hdf$", ".hdf")) })
    lu.assertEquals(rep.ok, want[1], mode .. ": " .. reason(rep) .. " / " .. r.stderr)
    if want[2] then lu.assertStrContains(reason(rep), want[2]) end
    if mode == "ok" then
      lu.assertEquals(r.code, 0)
      lu.assertEquals(rep.result.volume.layout, "6.x")
    end
    if mode == "crash" then lu.assertEquals(r.code, 174) end
    if mode == "silent" then lu.assertEquals(r.code, 0) end
  end
end

function TestChecks:test_messages_report_the_first_error_line_whole()
  local text = table.concat({
    "Writing Plan GIS Data...", "  Unsteady Input Summary:",
    "  12:00:05  Simulation Aborted at 02JAN1900", "ERROR: matrix solution failed", "Finished" }, "\n")
  local ok, detail = checks.messages { messages = text }
  lu.assertFalse(ok)
  lu.assertEquals(detail, 'compute messages: "12:00:05  Simulation Aborted at 02JAN1900"')
  ok, detail = checks.messages { messages = "ERROR: at the very start" }
  lu.assertEquals(detail, 'compute messages: "ERROR: at the very start"')
  -- a Windows path in the message stays as it is, ready to paste
  ok, detail = checks.messages { messages = "ERROR: Access to the path 'D:\\Models\\Creek' is denied." }
  lu.assertEquals(detail, [[compute messages: "ERROR: Access to the path 'D:\Models\Creek' is denied."]])
  lu.assertTrue(checks.messages { messages = "Finished Successfully\nno trouble" })
end

function TestChecks:test_stale_result_fails_freshness()
  local file = simulate("ok")
  -- the result was written before "launch": stale
  local rep = std(file, { since = sys.now() + 60, utc_offset = sys.tz_offset() })
  lu.assertFalse(rep.ok)
  lu.assertStrContains(rep.reason, "stale: written")
  -- a file touched now but whose Run Time Window began before launch is stale too
  fs.touch(file, sys.now() + 120)
  rep = std(file, { since = sys.now() + 60, utc_offset = sys.tz_offset() })
  lu.assertFalse(rep.ok)
  lu.assertStrContains(rep.reason, "Run Time Window")
end

-- A check called with since but no utc_offset reads the Run Time Window on
-- this machine's clock: a result just written west of UTC is fresh.
function TestChecks:test_freshness_without_utc_offset_reads_the_local_clock()
  local d = H.tmpdir("chk")
  H.project(d, { { title = "ok", mode = "ok", seconds = 0.05 } })
  local recipe = d .. "/fresh.lua"
  fs.write(recipe, table.concat({
    'local rasrun = require "rasrun"',
    'local t0 = rasrun.sys.now()',
    ('rasrun.sys.run({ %q, "Sample.p01.tmp.hdf", "x01" }, { cwd = %q, timeout = 30 })'):format(
      H.sim() .. "/bin/RasUnsteady", d),
    ('local rep = rasrun.checks.standard {}(%q, { since = t0 - 1 })'):format(d .. "/Sample.p01.tmp.hdf"),
    'print(rep.ok, rep.reason)', 'return rep.ok and 0 or 1', "" }, "\n"))
  local r = H.rasrun({ "run", recipe }, { env = { TZ = "XST+5" } }) -- 5 hours west of UTC
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
end

-- A run during which the clock went back an hour (daylight saving ends)
-- has a Run Time Window ending before it began: it is fresh all the same.
function TestChecks:test_a_run_across_the_end_of_daylight_saving_is_fresh()
  local hecdate = require "rasrun.hecdate"
  local since, offset = sys.now(), sys.tz_offset()
  local window = ("%s to %s"):format(hecdate.format(hecdate.local_naive(since + 1, offset) // 1),
                                     hecdate.format(hecdate.local_naive(since - 3000, offset) // 1))
  local rep = std(H.craft("window", window), { since = since, utc_offset = offset })
  lu.assertTrue(rep.ok, reason(rep))
end

function TestChecks:test_an_unreadable_run_time_window_leaves_the_file_time_to_judge()
  local file = H.craft("window", "17MAR2026 15:26:14 to")
  local rep = std(file, { since = sys.now() - 60, utc_offset = sys.tz_offset() })
  lu.assertTrue(rep.ok, reason(rep))
  lu.assertStrContains(rep.checks[1].detail, "Run Time Window unreadable")
  rep = std(file, { since = sys.now() + 60, utc_offset = sys.tz_offset() })
  lu.assertFalse(rep.ok)
  lu.assertStrContains(reason(rep), "stale: written")
end

-- A Solution that is not there, or cannot be read, is told apart from a
-- missing Summary group.
function TestChecks:test_a_missing_or_unreadable_solution_is_named()
  local rep = std(H.craft("nosolution"))
  lu.assertEquals(reason(rep), "solution: no Solution attribute in Results/Unsteady/Summary")
  rep = std(H.craft("opaque"))
  lu.assertStrContains(reason(rep), "the Solution attribute of Results/Unsteady/Summary cannot be read")
end

function TestChecks:test_nan_maxima_fail()
  local file = H.craft("nan")
  local ok, detail = checks.maxima { min = 0, max = 100 } { path = file }
  lu.assertFalse(ok)
  lu.assertEquals(detail, "area A cell 0: max WSEL is NaN")
end

function TestChecks:test_extra_checks_and_errors_inside_checks()
  local set = checks.standard { extra = {
    { name = "always", fn = function() return true, "fine" end },
    { name = "boom", fn = function() error("exploded") end },
  } }
  local rep = set(H.data .. "/rashdf/FLODENCR.p01.hdf")
  lu.assertFalse(rep.ok)
  lu.assertStrContains(rep.reason, "boom: check raised an error")
  lu.assertEquals(rep.checks[5].detail, "fine")
end

-- nil, why: the check does not apply; nothing returned: a verdict forgotten.
function TestChecks:test_an_extra_check_that_returns_nothing_fails()
  local set = checks.standard { extra = {
    { name = "n/a", fn = function() return nil, "not for steady runs" end },
    { name = "tight", fn = function(r) if r.volume and r.volume.error_percent == 0 then return true end end },
  } }
  local rep = set(H.data .. "/rashdf/FLODENCR.p01.hdf")
  lu.assertFalse(rep.ok)
  local by = {}
  for _, c in ipairs(rep.checks) do by[c.name] = c end
  lu.assertTrue(by["n/a"].ok)
  lu.assertTrue(by["n/a"].skipped)
  lu.assertFalse(by.tight.ok)
  lu.assertStrContains(rep.reason, "tight: the check returned nothing")
end

-- A mistake in the standard set's options is said when the recipe makes
-- the set (at its line), not as a failed check once every plan has run.
function TestChecks:test_the_standard_sets_options_are_checked_when_it_is_made()
  local cases = {
    { { max_volume_error = "0.5" }, 'max_volume_error must be a percentage above 0, got "0.5"' },
    { { max_volume_error = -1 }, "max_volume_error must be a percentage above 0, got -1" },
    { { max_vol_error = 1 }, "unknown option 'max_vol_error' (options: max_volume_error, maxima, extra)" },
    { { maxima = 5 }, "maxima must be a table { min =, max =, area =, baseline =, tolerance = }" },
    { { maxima = { mn = 1 } }, "unknown option maxima.mn (min, max, area, baseline, tolerance)" },
    { { maxima = { max = "9" } }, "maxima.max must be a number, got string" },
    { { extra = { { name = "x" } } }, "extra checks are {name = string, fn = function}" },
  }
  for _, c in ipairs(cases) do
    local ok, err = pcall(checks.standard, c[1])
    lu.assertFalse(ok, c[2])
    lu.assertEquals(err, "checks.standard: " .. c[2])
  end
  local recipe = H.tmpdir("opts") .. "/opts.lua"
  assert(fs.write(recipe, 'local rasrun = require "rasrun"\n'
    .. 'local set = rasrun.checks.standard { max_volume_error = "1" }\n'))
  local r = H.rasrun({ "run", recipe })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, recipe .. ':2: checks.standard: max_volume_error must be a percentage above 0, got "1"')
  lu.assertTrue(checks.is_set(checks.standard { max_volume_error = 2, maxima = { min = 0, area = "A" } }))
end

-- `rasrun check` on a project's .pNN.tmp.hdf (the Linux engine's input)
-- says what the file is, not that an engine wrote no results.
function TestChecks:test_a_tmp_hdf_is_named_as_the_engines_input()
  local dir = H.tmpdir("tmphdf")
  require("rasrun.sample").write(dir)
  local rep = checks.standard {}(dir .. "/Sample.p01.tmp.hdf")
  lu.assertFalse(rep.ok)
  lu.assertEquals(rep.checks[1].detail, "the plan's input to the Linux engine (.tmp.hdf), not a result: it holds no results")
  -- a work folder's .tmp.hdf checked as the result it becomes: the engine wrote none
  rep = checks.standard {}(dir .. "/Sample.p01.tmp.hdf", { name = dir .. "/Sample.p01.hdf" })
  lu.assertEquals(rep.checks[1].detail, "the file holds plan data but no results: the engine wrote none")
end

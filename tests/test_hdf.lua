-- rasrun.hdf on real HEC-RAS files and on damaged ones.
local lu = require "luaunit"
local hdf = require "rasrun.hdf"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local H = require "helpers"

TestHdf = {}

local BALD = H.data .. "/rashdf/BaldEagleDamBrk.p18.hdf"
local MUNCIE507 = H.data .. "/pyHMT2D/Muncie2DOnly_SI.p01.hdf"
local GEOM = H.data .. "/HEC-RAS-AUTO/Example_Projects_6_6/Muncie.g04.hdf"
local MAXWS = "/Results/Unsteady/Output/Output Blocks/Base Output/Summary Output/2D Flow Areas/"
  .. "BaldEagleCr/Maximum Water Surface"

function TestHdf:tearDown() H.cleanup() end

function TestHdf:test_root_attributes_are_trimmed_strings()
  local f = assert(hdf.open(BALD))
  local a = f:attrs("/")
  lu.assertEquals(a["File Type"], "HEC-RAS Results")
  lu.assertEquals(a["File Version"], "HEC-RAS 6.5 February 2024")
  f:close()
end

function TestHdf:test_space_padded_strings_lose_their_padding()
  local f = assert(hdf.open(MUNCIE507))
  -- stored as "Base Output" followed by spaces, no NUL
  lu.assertEquals(f:attr("/Results/Unsteady/Output/Output Blocks/Base Output", "Output Block Name"),
    "Base Output")
  lu.assertEquals(f:attr("/Results/Unsteady/Summary", "Solution"), "Unsteady Finished Successfully")
  f:close()
end

function TestHdf:test_numeric_attributes_are_numbers()
  local f = assert(hdf.open(MUNCIE507))
  local pct = f:attr("/Results/Unsteady/Summary", "Vol Accounting Error Percentage")
  lu.assertEquals(type(pct), "number")
  lu.assertAlmostEquals(pct, 0.000117591, 1e-9)
  f:close()
end

function TestHdf:test_members_kind_exists()
  local f = assert(hdf.open(BALD))
  local m = f:members("/Results/Unsteady/Output/Output Blocks/Base Output/Summary Output/2D Flow Areas")
  lu.assertEquals(m, { "BaldEagleCr", "Upper 2D Area" })
  lu.assertEquals(f:kind("/Results"), "group")
  lu.assertEquals(f:kind(MAXWS), "dataset")
  lu.assertTrue(f:exists("/Plan Data/Plan Information"))
  lu.assertFalse(f:exists("/Results/Unsteady/Summary"))
  lu.assertFalse(f:exists("/No/Such/Group"))
  local v, err = f:members("/No/Such")
  lu.assertNil(v)
  lu.assertStrContains(err, "BaldEagleDamBrk.p18.hdf: no group /No/Such")
  f:close()
end

function TestHdf:test_read_2d_dataset_and_hyperslab()
  local f = assert(hdf.open(BALD))
  local info = f:info(MAXWS)
  lu.assertEquals(info.shape, { 2, 3947 })
  lu.assertEquals(info.type, "float32")
  local all = f:read(MAXWS)
  lu.assertEquals(#all, 2)
  lu.assertEquals(#all[1], 3947)
  local slab = f:read(MAXWS, { 1, 11 }, { 1, 5 })
  lu.assertEquals(#slab, 1)
  lu.assertEquals(#slab[1], 5)
  for i = 1, 5 do lu.assertEquals(slab[1][i], all[1][10 + i]) end
  local tail = f:read(MAXWS, { 2, 3945 })
  lu.assertEquals(#tail[1], 3)
  local v, err = f:read(MAXWS, { 1, 3947 }, { 1, 5 })
  lu.assertNil(v)
  lu.assertStrContains(err, "past the end")
  -- a malformed hyperslab is an answer naming the dataset, not a raised
  -- error that would leave it open
  for _, bad in ipairs({ { "x" }, { { 1, "a" } }, { { 1, 1.5 } }, { { 1, 1 }, "y" } }) do
    v, err = f:read(MAXWS, bad[1], bad[2])
    lu.assertNil(v)
    lu.assertStrContains(err, MAXWS)
    lu.assertStrContains(err, "tables of whole numbers, one per dimension")
  end
  f:close()
end

function TestHdf:test_compound_dataset_rows_are_tables()
  local f = assert(hdf.open(GEOM))
  local rows = f:read("/Geometry/2D Flow Areas/Attributes")
  lu.assertEquals(#rows, 1)
  lu.assertEquals(type(rows[1].Name), "string")
  lu.assertEquals(math.type(rows[1]["Cell Count"]), "integer")
  lu.assertTrue(rows[1]["Cell Count"] > 0)
  f:close()
  -- a table of 91 members (the structures'), and bit-field attributes
  f = assert(hdf.open(H.data .. "/rashdf/FLODENCR.p01.hdf"))
  rows = assert(f:read("/Geometry/Structures/Attributes"))
  local n = 0
  for _ in pairs(rows[1]) do n = n + 1 end
  lu.assertEquals(n, 91)
  local attrs, unread = f:attrs("/Geometry/River Edge Lines")
  lu.assertNil(unread)
  lu.assertEquals(#attrs["Source Data Hash"], 32) -- a SHA-256, one byte per element
  lu.assertEquals(#attrs["Source Data Hash"][1], 1)
  f:close()
end

function TestHdf:test_fixed_string_dataset()
  local f = assert(hdf.open(MUNCIE507))
  local msgs = f:read("/Results/Summary/Compute Messages (text)")
  lu.assertStrContains(msgs[1], "Complete Process")
  f:close()
end

function TestHdf:test_stat_gives_the_file_as_it_was_opened()
  local d = H.tmpdir("hdf")
  local copy = d .. "/copy.hdf"
  lu.assertTrue(fs.copy(BALD, copy, true))
  local before = fs.stat(copy)
  local f <close> = assert(hdf.open(copy))
  lu.assertEquals(f:stat(), { size = before.size, mtime = before.mtime })
  -- replaced meanwhile: the open file's facts stay those it was opened with
  fs.write(copy .. ".new", "x")
  lu.assertTrue(fs.rename(copy .. ".new", copy))
  lu.assertEquals(f:stat().size, before.size)
end

function TestHdf:test_missing_and_non_hdf_files()
  local d = H.tmpdir("hdf")
  local f, err = hdf.open(d .. "/nope.hdf")
  lu.assertNil(f)
  lu.assertStrContains(err, "nope.hdf: No such file or directory")
  fs.write(d .. "/empty.hdf", "")
  f, err = hdf.open(d .. "/empty.hdf")
  lu.assertStrContains(err, "empty file")
  fs.write(d .. "/text.hdf", "Plan Title=not hdf\n")
  f, err = hdf.open(d .. "/text.hdf")
  lu.assertStrContains(err, "text.hdf: not an HDF5 file")
  f, err = hdf.open(d)
  lu.assertStrContains(err, "not a regular file")
  lu.assertFalse(hdf.is_hdf5(d .. "/text.hdf"))
  lu.assertTrue(hdf.is_hdf5(BALD))
end

-- A file the user may not read is said so, not called "not HDF5".
function TestHdf:test_an_unreadable_file_is_said_so()
  if sys.uid() ~= 0 then lu.skip("needs root, to run rasrun as another user") end
  local d = H.tmpdir("hdf")
  local file = d .. "/private.hdf"
  assert(fs.write(file, H.read(BALD)))
  lu.assertEquals(sys.run({ "chmod", "755", d }).code, 0)
  lu.assertEquals(sys.run({ "chmod", "600", file }).code, 0)
  local r = sys.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", H.bin, "check", file },
    { timeout = 30 })
  if r.stderr:find("Permission denied", 1, true) and not r.stdout:find("FAIL", 1, true) then
    lu.skip("rasrun itself cannot be run as nobody here: " .. r.stderr)
  end
  lu.assertEquals(r.code, 2, r.stderr) -- not a result that failed its checks
  lu.assertStrContains(r.stdout, "FAIL " .. file .. ": file: " .. file .. ": Permission denied")
end

function TestHdf:test_truncated_file_is_refused()
  local d = H.tmpdir("hdf")
  local data = H.read(BALD)
  for _, n in ipairs({ 8, 512, 4096, #data // 2, #data - 1 }) do
    local p = ("%s/cut%d.hdf"):format(d, n)
    fs.write(p, data:sub(1, n))
    local f, err = hdf.open(p)
    if f then
      -- A cut past the metadata may open; reading must still fail cleanly.
      local ok = pcall(function() return f:attrs("/"), f:members("/") end)
      lu.assertTrue(ok)
      f:close()
    else
      lu.assertStrContains(err, p)
    end
  end
end

function TestHdf:test_random_bytes_after_the_signature_do_not_crash()
  local d = H.tmpdir("hdf")
  local sig = "\137HDF\r\n\26\n"
  math.randomseed(42)
  for i = 1, 20 do
    local bytes = {}
    for k = 1, 2048 do bytes[k] = string.char(math.random(0, 255)) end
    local p = ("%s/rand%d.hdf"):format(d, i)
    fs.write(p, sig .. table.concat(bytes))
    local f, err = hdf.open(p)
    lu.assertNil(f)
    lu.assertStrContains(err, "cannot be opened")
  end
end

-- UTF-8 strings (as h5py writes them) read as text, whatever was read before.
function TestHdf:test_utf8_strings_are_read()
  local file = H.craft("utf8")
  local f = assert(hdf.open(file))
  lu.assertEquals(f:attr("/Results/Unsteady/Summary", "Solution"), "Unsteady Finished Successfully")
  f:close()
end

-- An attribute with no value (a null dataspace) reads as nil, not 0.
function TestHdf:test_an_attribute_without_a_value_is_nil()
  local f = assert(hdf.open(H.craft("nosolution")))
  lu.assertNil(f:attr("/Results/Unsteady/Summary", "Empty"))
  local a = f:attrs("/Results/Unsteady/Summary")
  lu.assertNil(a.Empty)
  lu.assertNotNil(a["Run Time Window"])
  f:close()
end

-- Compounds nested past what rasrun reads are refused, not a crash; a few
-- levels read as nested tables.
function TestHdf:test_deeply_nested_compounds_are_refused()
  local f = assert(hdf.open(H.craft("nested", "3")))
  lu.assertEquals(f:read("/deep"), { { x = { x = { x = 1 } } }, { x = { x = { x = 2 } } } })
  f:close()
  f = assert(hdf.open(H.craft("nested", "200")))
  local v, err = f:read("/deep")
  lu.assertNil(v)
  lu.assertStrContains(err, "/deep")
  f:close()
end

-- A file another process has open for writing (HDF5 locks it) says so.
function TestHdf:test_a_file_being_written_is_reported_in_use()
  local file = H.craft("window", "17MAR2026 15:26:14 to 17MAR2026 15:26:24")
  local sys = require "rasrun.sys"
  local pid = assert(H.spawn({ H.root .. "/build/h5craft", "hold", file, "20" }))
  local f, err
  H.wait_for(function()
    f, err = hdf.open(file)
    if f then f:close() end
    return err and err:find("in use", 1, true)
  end, 10, "the file to be held")
  sys.kill(pid, "KILL")
  sys.wait(pid, 5)
  lu.assertStrContains(err, "in use by another process (HDF5 file lock)")
end

function TestHdf:test_closed_handle_raises_and_close_is_idempotent()
  local f = assert(hdf.open(BALD))
  f:close()
  f:close()
  lu.assertErrorMsgContains("HDF5 file is closed", function() f:attrs("/") end)
  lu.assertStrContains(tostring(f), "(closed)")
end

function TestHdf:test_to_be_closed_variable_closes()
  local handle
  do
    local f <close> = assert(hdf.open(BALD))
    handle = f
    lu.assertEquals(f:kind("/"), "group")
  end
  lu.assertErrorMsgContains("closed", function() handle:members("/") end)
end

function TestHdf:test_wrong_argument_types_raise()
  lu.assertErrorMsgContains("bad argument", function() hdf.open() end)
  local f = assert(hdf.open(BALD))
  lu.assertErrorMsgContains("bad argument", function() f:attr("/") end)
  f:close()
end

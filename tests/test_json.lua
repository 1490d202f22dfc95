-- rasrun.json: encoding is deterministic (sorted keys) whatever the keys are.
local lu = require "luaunit"
local json = require "rasrun.json"
local H = require "helpers"

TestJson = {}

function TestJson:tearDown() H.cleanup() end

function TestJson:test_objects_encode_with_sorted_keys()
  lu.assertEquals(json.encode({ b = 1, a = "x", c = true }), '{"a":"x","b":1,"c":true}')
  -- numeric keys that are not a sequence become strings, sorted with the rest
  lu.assertEquals(json.encode({ z = 1, ["1"] = 2, [10] = 3 }), '{"1":2,"10":3,"z":1}')
  lu.assertEquals(json.encode({ a = { [3] = "x", [10] = "y" } }), '{"a":{"10":"y","3":"x"}}')
end

function TestJson:test_arrays_nesting_and_odd_values()
  lu.assertEquals(json.encode({ 1, 2, { k = { 3 } } }), '[1,2,{"k":[3]}]')
  lu.assertEquals(json.encode({ e = json.array(), n = 0 / 0, i = math.huge }), '{"e":[],"i":null,"n":null}')
  -- many keys (more than the fast path holds) still sort
  local t, want = {}, {}
  for i = 1, 100 do t[("k%03d"):format(i)] = i; want[#want + 1] = ('"k%03d":%d'):format(i, i) end
  lu.assertEquals(json.encode(t), "{" .. table.concat(want, ",") .. "}")
  local v = json.decode(json.encode({ plans = { { key = "a/p01", ok = true } } }))
  lu.assertEquals(v.plans[1].key, "a/p01")
end

function TestJson:test_what_cannot_be_encoded_is_an_error()
  local cyc = {}
  cyc.self = cyc
  lu.assertErrorMsgContains("cycle", json.encode, cyc)
  lu.assertErrorMsgContains("function", json.encode, { f = print })
end

-- decode takes one JSON value: more text after it, or nesting past the
-- limit, is an answer saying so, not a partial value
function TestJson:test_decode_refuses_trailing_text_and_deep_nesting()
  lu.assertEquals(json.decode("[1]  \n"), { 1 })
  local v, err = json.decode('{"a": 1} {"b": 2}')
  lu.assertNil(v)
  lu.assertStrContains(err, "byte 10): text after the value")
  v, err = json.decode(("["):rep(300) .. ("]"):rep(300))
  lu.assertNil(v)
  lu.assertStrContains(err, "nested deeper than 200")
  v, err = json.decode('{"a": ')
  lu.assertNil(v)
  lu.assertStrContains(err, "invalid JSON at line 1")
end

-- integers keep every digit (cJSON's own numbers are doubles)
function TestJson:test_integers_encode_exactly()
  lu.assertEquals(json.encode({ math.maxinteger, -7, 0, 1.5 }), "[9223372036854775807,-7,0,1.5]")
  lu.assertEquals(json.encode({ n = (1 << 53) + 1 }), '{"n":9007199254740993}')
end

-- text from Windows HEC-RAS files is Windows-1252, not UTF-8: the JSON made
-- of it stays valid UTF-8 (a plan title "Brücke 10°" as HEC-RAS writes it)
function TestJson:test_windows_1252_text_becomes_utf8()
  local s = json.encode({ title = "Br\xfccke 10\xb0 \x80" })
  lu.assertEquals(s, '{"title":"Br\xc3\xbccke 10\xc2\xb0 \xe2\x82\xac"}')
  lu.assertEquals(json.decode(s).title, "Brücke 10° €")
  lu.assertEquals(json.encode({ "caf\xc3\xa9" }), '["caf\xc3\xa9"]') -- UTF-8 stays as it is
  -- the same for text that leaves rasrun otherwise (report.html)
  lu.assertEquals(json.utf8("Br\xfccke 10\xb0 \x80"), "Brücke 10° €")
  lu.assertEquals(json.utf8("caf\xc3\xa9"), "caf\xc3\xa9")
end

-- json.encode writes its text as it walks the value (no cJSON tree), laid
-- out as cJSON prints it: pretty with its tabs and new lines, controls
-- escaped; a double with 15 digits unless it takes 17 to read back exactly
-- (cJSON keeps 15 that read back within a rounding error).
function TestJson:test_encode_writes_text_laid_out_as_cjson_prints_it()
  lu.assertEquals(json.encode({ a = { 1, { b = true } }, e = {}, s = "x" }, true),
    '{\n\t"a":\t[1, {\n\t\t\t"b":\ttrue\n\t\t}],\n\t"e":\t{\n\t},\n\t"s":\t"x"\n}')
  lu.assertEquals(json.encode({ "q\"b\\s/\b\f\n\r\t\1\31\127" }), '["q\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\127"]')
  lu.assertEquals(json.encode({ "a\0b" }), '["a\\u0000b"]') -- every byte of a Lua string
  lu.assertEquals(json.encode({ 0.1, 1 / 3, 1.0, -0.0, 3e9, 1e300, 0.1 + 0.2 }),
    "[0.1,0.33333333333333331,1,-0,3000000000,1e+300,0.30000000000000004]")
  for _, v in ipairs({ 1 / 3, 0.1 + 0.2, 2 ^ -1074, 123456.789e-7 }) do
    lu.assertEquals(json.decode(json.encode({ v }))[1], v)
  end
end

-- A recipe may set a locale whose decimal point is a comma (os.setlocale):
-- JSON numbers keep their '.', in json.encode and in the journal's times.
function TestJson:test_numbers_keep_their_point_in_a_decimal_comma_locale()
  local sys = require("rasrun").sys
  local d = H.tmpdir("json")
  -- (localedef says 1 for warnings: what counts is that the locale was made)
  local made = sys.run({ "localedef", "-i", "de_DE", "-f", "UTF-8", d .. "/de_DE.UTF-8" }, { timeout = 60 })
  if not require("rasrun.fs").isdir(d .. "/de_DE.UTF-8") then
    lu.skip("cannot make a de_DE locale (Debian's locales package): " .. made.stderr)
  end
  local f = assert(io.open(d .. "/comma.lua", "w"))
  f:write([[
local json = require "rasrun.json"
assert(os.setlocale("de_DE.UTF-8", "numeric"), "no de_DE locale")
assert(("%.1f"):format(0.5) == "0,5", "not a decimal comma")
print(json.encode({ 0.5, 1 / 3, { t = 2.25 } }))
local j = assert(require("rasrun.journal").open(arg[1]))
j:write { ev = "x", v = 0.75 }
j:close()
]])
  f:close()
  -- (glibc keeps a few bytes of the locale it loaded: no leak of rasrun's,
  -- which LeakSanitizer would report in a sanitized build)
  local r = H.rasrun({ "run", d .. "/comma.lua", d .. "/journal.jsonl" },
    { env = { LOCPATH = d, ASAN_OPTIONS = (os.getenv("ASAN_OPTIONS") or "") .. ":detect_leaks=0" } })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, '[0.5,0.33333333333333331,{"t":2.25}]\n')
  local line = json.decode(H.read(d .. "/journal.jsonl"))
  lu.assertNotNil(line, H.read(d .. "/journal.jsonl"))
  lu.assertEquals(line.v, 0.75)
  lu.assertEquals(math.type(line.t), "float")
end

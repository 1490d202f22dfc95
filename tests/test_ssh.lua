-- The SSH worker against real OpenSSH sshd on test hosts in network
-- namespaces (tests/testhosts.lua). Needs root; skipped with RASRUN_TEST_FAST.
local lu = require "luaunit"
local rasrun = require "rasrun"
local fs = require "rasrun.fs"
local sys = require "rasrun.sys"
local json = require "rasrun.json"
local H = require "helpers"
local T = require "testhosts"

TestSsh = {}

local env

function TestSsh:setupClass()
  if H.fast or sys.run({ "id", "-u" }).stdout ~= "0\n" then return end
  env = T.start(3)
end

function TestSsh:teardownClass()
  if env then T.stop(env) end
  env = nil
end

function TestSsh:setUp()
  if not env then lu.skip("needs root for network namespaces (or RASRUN_TEST_FAST=1)") end
end

function TestSsh:tearDown()
  if env then T.mend_all(env) end
  H.cleanup()
end

local function project(plans)
  local d = H.tmpdir("ssh")
  return rasrun.project.open(H.project(d, plans)), d
end

local function run(pool, prj, opts)
  opts = opts or {}
  opts.project = prj
  opts.run_dir = opts.run_dir or (prj.dir .. "/run-" .. sys.monotonic())
  return H.run(pool, opts)
end

local function no_engines_anywhere()
  for _, h in ipairs(env.hosts) do
    if #T.engines(h) > 0 then return false end
  end
  return true
end

-- The DSS files a flow's boundaries read go into the remote work folder, in
-- their subfolders (the simulated Ras.exe stops without them).
function TestSsh:test_dss_files_in_subfolders_are_staged()
  local _, d = project({ { title = "gauged", seconds = 0.05 } })
  H.dss_boundaries(d)
  local prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  local r = run(rasrun.pool { T.worker(env, 1, { engine = { kind = "windows", home = H.sim("windows") } }) }, prj)
  lu.assertTrue(r.ok, r.results[1].reason)
end

-- A boundary file with Windows line ends (CR LF), which the Linux engine
-- does not read: the host's work folder gets a copy without them (with the
-- file's time), next to a plan whose boundary file is linked as it is.
function TestSsh:test_a_boundary_file_with_windows_line_ends_runs_on_the_linux_engine()
  local _, d = project({ { title = "a", seconds = 0.05 }, { title = "b", seconds = 0.05 } })
  local text = "fake boundary conditions\r\nsecond line\r\n"
  assert(fs.write(d .. "/Sample.b01", text))
  local prj = assert(rasrun.project.open(d .. "/Sample.prj"))
  local r = run(rasrun.pool { T.worker(env, 2) }, prj)
  lu.assertTrue(r.ok, tostring(r.results[1].reason) .. "; " .. tostring(r.results[2].reason))
  lu.assertEquals(H.read(d .. "/Sample.b01"), text)
end

-- A project name near a file name's 255 bytes: its result comes back from
-- the host through a temporary name that fits, on both engines.
function TestSsh:test_a_project_name_near_the_longest_file_name_runs()
  local d = H.tmpdir("ssh-long")
  local name = ("Rhône_crue_"):rep(19)
  local prj = rasrun.project.open(H.project(d, { { title = "a", seconds = 0.05 } }, { name = name }))
  for _, kind in ipairs({ "linux", "windows" }) do
    local r = run(rasrun.pool { T.worker(env, 1, { engine = { kind = kind, home = H.sim(kind) } }) }, prj,
      { force = true })
    lu.assertEquals(r.results[1].status, "ok", kind .. ": " .. tostring(r.results[1].reason))
  end
  lu.assertTrue(fs.isfile(d .. "/" .. name .. ".p01.hdf"))
end

-- A host whose clock is ahead (here: an engine that dates what it writes a
-- minute on): the restart file one plan brings back does not make the plan
-- restarting from it look out of date, nor run again next time.
function TestSsh:test_outputs_of_a_host_with_a_clock_ahead_do_not_make_results_stale()
  local home = H.tmpdir("engine") .. "/hecras"
  for _, argv in ipairs({ { "cp", "-a", H.sim("windows"), home }, { "mkdir", home .. "/real" },
                          { "mv", home .. "/Ras.exe", home .. "/real/Ras.exe" } }) do
    lu.assertEquals(sys.run(argv).code, 0)
  end
  assert(fs.write(home .. "/Ras.exe", table.concat({ "#!/bin/sh", '"$(dirname "$0")/real/Ras.exe" "$@"', "rc=$?",
    'for f in *; do touch -d "@$(( $(date +%s) + 60 ))" "$f"; done', "exit $rc", "" }, "\n")))
  lu.assertEquals(sys.run({ "chmod", "755", home .. "/Ras.exe" }).code, 0)
  local rst = "Sample.p01.03JAN1900 0000.rst"
  local prj = project({ { title = "spin-up", seconds = 0.05, flow = "u01", write_ic = true },
                        { title = "from the spin-up", seconds = 0.05, flow = "u02", restart = rst } })
  local pool = rasrun.pool { T.worker(env, 1, { engine = { kind = "windows", home = home } }) }
  local after = { ["02"] = { "01" } }
  local r = run(pool, prj, { after = after })
  lu.assertTrue(r.ok, tostring(H.result(r, "01").reason))
  lu.assertNil(H.result(r, "02").reason)
  prj = rasrun.project.open(prj.path)
  lu.assertEquals({ prj:plan("01"):result_state(), (prj:plan("02"):result_state()) }, { "current", "current" })
  r = run(pool, prj, { after = after })
  lu.assertEquals({ H.result(r, "01").status, H.result(r, "02").status }, { "skipped", "skipped" })
end

function TestSsh:test_probe_reports_connection_engine_cores_disk()
  local rep = rasrun.ssh.probe(T.worker(env, 1))
  local by = {}
  for _, c in ipairs(rep.checks) do by[c.name] = c end
  lu.assertTrue(by.connect.ok, by.connect.detail)
  lu.assertTrue(by.engine.ok, by.engine.detail)
  lu.assertEquals(rep.cores, sys.ncpu())
  lu.assertTrue(rep.free_bytes > 0)
  local broken = T.worker(env, 1, { engine = { kind = "linux", home = "/nowhere" } })
  rep = rasrun.ssh.probe(broken)
  lu.assertStrContains(rep.checks[2].detail, "/nowhere/bin/RasUnsteady: not found on the host")
  -- a work folder that cannot be made is no free disk
  rep = rasrun.ssh.probe(T.worker(env, 1, { workdir = "/proc/nonexist/w" }))
  by = {}
  for _, c in ipairs(rep.checks) do by[c.name] = c end
  lu.assertFalse(by.disk.ok)
  lu.assertEquals(by.disk.detail, "work folder /proc/nonexist/w cannot be made or written")
end

function TestSsh:test_workers_command_probes_a_recipe()
  local d = H.tmpdir("ssh")
  fs.write(d .. "/probe.lua", ([[
local rasrun = require "rasrun"
local pool = rasrun.pool {
  rasrun.worker { type = "ssh", name = "h1", host = %q, user = "root", identity = %q,
                  known_hosts = %q, workdir = %q, engine = { kind = "linux", home = %q } },
  rasrun.worker { type = "ssh", name = "nobody", host = %q, user = "root",
                  identity = %q, known_hosts = %q, connect_timeout = 1,
                  engine = { kind = "linux", home = "/x" } },
}
pool:run { project = "unused.prj" }
error("not reached")
]]):format(env.hosts[1].addr, env.key, env.known_hosts, env.hosts[1].work, env.hosts[1].home,
    T.nobody(env), env.key, env.known_hosts))
  local r = H.rasrun({ "workers", d .. "/probe.lua" })
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertStrContains(r.stdout, "OK   h1 (ssh, root@" .. env.hosts[1].addr)
  lu.assertStrContains(r.stdout, "FAIL nobody")
  lu.assertStrContains(r.stdout, "cannot connect")
end

function TestSsh:test_key_agent_and_password_authentication()
  local ssh_c = require "rasrun.ssh_c"
  local s = rasrun.ssh.settings(T.worker(env, 1))
  local c = assert(ssh_c.connect(s))
  local code, out = c:exec("echo hello")
  lu.assertEquals(code, 0)
  lu.assertEquals(out, "hello\n")
  c:close()
  -- agent
  local sock = H.tmpdir("agent") .. "/sock"
  local agent = sys.run({ "ssh-agent", "-a", sock })
  lu.assertEquals(agent.code, 0, agent.stderr)
  local agent_pid = tonumber(agent.stdout:match("SSH_AGENT_PID=(%d+)"))
  local old = os.getenv("SSH_AUTH_SOCK")
  sys.setenv("SSH_AUTH_SOCK", sock)
  local added = sys.run({ "ssh-add", env.key }, { env = { SSH_AUTH_SOCK = sock } })
  lu.assertEquals(added.code, 0, added.stderr)
  local via_agent = rasrun.ssh.settings(T.worker(env, 1, { identity = false, agent = true }))
  lu.assertEquals(#via_agent.identities, 0)
  local ok, err = pcall(function() assert(ssh_c.connect(via_agent)):close() end)
  sys.setenv("SSH_AUTH_SOCK", old)
  sys.kill(agent_pid, "TERM")
  lu.assertTrue(ok, err)
  -- password from an environment variable, never shown
  T.add_user(env, "rrtest", "Secr3t-pw")
  sys.setenv("RR_TEST_PW", "Secr3t-pw")
  local pw = rasrun.ssh.settings(T.worker(env, 1, { user = "rrtest", identity = false,
                                                     password_env = "RR_TEST_PW", agent = false }))
  c = assert(ssh_c.connect(pw))
  code, out = c:exec("id -un")
  lu.assertEquals(out, "rrtest\n")
  c:close()
  sys.setenv("RR_TEST_PW", "wrong-pw")
  local bad, msg = ssh_c.connect(pw)
  lu.assertNil(bad)
  lu.assertStrContains(msg, "authentication failed: password from RR_TEST_PW (refused)")
  lu.assertNil(msg:find("wrong-pw", 1, true))
  sys.setenv("RR_TEST_PW", nil)
  -- a key the host does not know
  local wrong = H.tmpdir("key") .. "/wrong"
  sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrong })
  bad, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { identity = wrong, agent = false })))
  lu.assertNil(bad)
  lu.assertStrContains(msg, "ssh h1 (root@" .. env.hosts[1].addr .. "): authentication failed: key "
    .. wrong .. " (refused)")
end

-- Without SHA instructions hmac-sha1 goes first (hmac-sha2-256 halves bulk
-- transfer speed there), and a host that refuses it gets SHA-2; a worker's
-- macs and ciphers win; names this libssh2 lacks are a clear error.
function TestSsh:test_macs_and_ciphers_are_chosen()
  local ssh_c = require "rasrun.ssh_c"
  local sha_ni = H.read("/proc/cpuinfo"):find("%f[%w_]sha_ni%f[^%w_]") ~= nil
  local c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1))))
  lu.assertEquals(c:stats().mac, sha_ni and "hmac-sha2-256" or "hmac-sha1")
  c:close()
  -- host 3 refuses hmac-sha1: SHA-2 then
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 3))))
  lu.assertEquals(c:stats().mac, "hmac-sha2-256")
  c:close()
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, {
    macs = { "umac-64@openssh.com", "hmac-sha2-512" }, ciphers = "aes256-ctr" }))))
  lu.assertEquals(c:stats().mac, "hmac-sha2-512")
  lu.assertEquals(c:stats().cipher, "aes256-ctr")
  lu.assertEquals(select(2, c:exec("echo ok")), "ok\n")
  c:close()
  local bad, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { ciphers = "chacha20-poly1305@openssh.com" })))
  lu.assertNil(bad)
  lu.assertStrContains(msg, 'ssh h1 (root@' .. env.hosts[1].addr .. '): ciphers = "chacha20-poly1305@openssh.com": '
    .. "this libssh2 supports none of them (it has: aes128-ctr")
end

function TestSsh:test_key_with_a_passphrase_from_the_environment()
  local ssh_c = require "rasrun.ssh_c"
  local k = H.tmpdir("key") .. "/locked"
  sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "open sesame", "-f", k })
  local auth = env.hosts[1].dir .. "/authorized_keys"
  local before = H.read(auth)
  fs.write(auth, before .. H.read(k .. ".pub"))
  local w = T.worker(env, 1, { identity = k, passphrase_env = "RR_TEST_PASSPHRASE", agent = false })
  sys.setenv("RR_TEST_PASSPHRASE", "open sesame")
  local c, err = ssh_c.connect(rasrun.ssh.settings(w))
  sys.setenv("RR_TEST_PASSPHRASE", "wrong words")
  local bad, msg = ssh_c.connect(rasrun.ssh.settings(w))
  sys.setenv("RR_TEST_PASSPHRASE", nil)
  fs.write(auth, before)
  lu.assertNotNil(c, err)
  c:close()
  lu.assertNil(bad)
  lu.assertStrContains(msg, "key " .. k .. " (cannot be read: wrong passphrase?)")
  lu.assertNil(msg:find("wrong words", 1, true))
end

function TestSsh:test_stage_tree_sends_only_what_changed()
  local c = assert(rasrun.ssh.connect(T.worker(env, 1)))
  local src = H.tmpdir("tree")
  for i = 1, 30 do
    fs.mkdirs(("%s/d%d"):format(src, i % 3))
    fs.write(("%s/d%d/f%02d.txt"):format(src, i % 3, i), ("content %d\n"):format(i):rep(100))
  end
  local dest = env.hosts[1].work .. "/tree"
  local first = assert(c:stage_tree(src, dest))
  lu.assertEquals(first.files, 30)
  lu.assertEquals(first.uploaded, 30)
  lu.assertEquals(H.read(dest .. "/d1/f07.txt"), H.read(src .. "/d1/f07.txt"))
  local again = assert(c:stage_tree(src, dest))
  lu.assertEquals(again.uploaded, 0)
  lu.assertEquals(again.bytes, 0)
  fs.write(src .. "/d2/f05.txt", "changed\n")
  local third = assert(c:stage_tree(src, dest))
  lu.assertEquals(third.uploaded, 1)
  lu.assertEquals(H.read(dest .. "/d2/f05.txt"), "changed\n")
  -- a plain put replaces the file there, through a temporary name of its own
  fs.write(src .. "/new.txt", "new\n")
  assert(c:put(src .. "/new.txt", dest .. "/d2/f05.txt"))
  lu.assertEquals(H.read(dest .. "/d2/f05.txt"), "new\n")
  lu.assertEquals(fs.glob(dest .. "/d2/*rasrun-part*"), {})
  c:close()
  fs.rmtree(dest)
end

-- Many small files go in one tar stream (modes, times, deep paths kept);
-- big ones by SFTP; a host that cannot extract says so.
function TestSsh:test_stage_tree_streams_small_files_by_tar()
  local c = assert(rasrun.ssh.connect(T.worker(env, 1)))
  local src = H.tmpdir("tartree")
  local deep = ("very long folder name "):rep(5) .. "/" .. ("and another long one "):rep(4)
  fs.mkdirs(src .. "/" .. deep)
  local total = 0
  for i = 1, 40 do
    local rel = (i % 2 == 0 and deep .. "/" or "") .. ("f%02d.dat"):format(i)
    local body = ("%d "):format(i):rep(i * 37)
    fs.write(src .. "/" .. rel, body)
    total = total + #body
  end
  sys.run({ "touch", "-d", "2001-02-03 04:05:06", src .. "/f01.dat" })
  sys.run({ "chmod", "755", src .. "/f03.dat" })
  local big = ("x"):rep(3 * 1024 * 1024)
  fs.write(src .. "/big.bin", big)
  total = total + #big
  local dest = env.hosts[1].work .. "/tartree"
  local r = assert(c:stage_tree(src, dest))
  lu.assertEquals(r.uploaded, 41)
  lu.assertEquals(r.bytes, total)
  for i = 1, 40 do
    local rel = (i % 2 == 0 and deep .. "/" or "") .. ("f%02d.dat"):format(i)
    lu.assertEquals(H.read(dest .. "/" .. rel), H.read(src .. "/" .. rel), rel)
  end
  lu.assertEquals(#H.read(dest .. "/big.bin"), #big)
  lu.assertEquals(fs.stat(dest .. "/f01.dat").mtime, fs.stat(src .. "/f01.dat").mtime)
  lu.assertStrContains(sys.run({ "stat", "-c", "%a", dest .. "/f03.dat" }).stdout, "755")
  -- every small file changed: streamed again, over the old ones
  for i = 1, 40 do
    local rel = (i % 2 == 0 and deep .. "/" or "") .. ("f%02d.dat"):format(i)
    fs.write(src .. "/" .. rel, "new " .. i)
  end
  r = assert(c:stage_tree(src, dest))
  lu.assertEquals(r.uploaded, 40)
  lu.assertEquals(H.read(dest .. "/f05.dat"), "new 5")
  -- a folder where a file must go: tar fails, and the message names host and folder
  for i = 1, 40 do fs.write(src .. ("/g%02d.dat"):format(i), "g") end
  fs.mkdirs(dest .. "/g07.dat/in-the-way")
  local ok, msg = c:stage_tree(src, dest)
  lu.assertNil(ok)
  lu.assertStrContains(msg, "tar could not write into " .. dest)
  lu.assertStrContains(msg, env.hosts[1].addr)
  -- a command that exits without reading its input: its status, not a link error
  -- (so a host without tar falls back to SFTP)
  local code = c:exec("exit 3", ("x"):rep(8 * 1024 * 1024), 30)
  lu.assertEquals(code, 3)
  c:close()
  fs.rmtree(dest)
end

function TestSsh:test_host_key_mismatch_is_refused_and_accept_new_records()
  local ssh_c = require "rasrun.ssh_c"
  local d = H.tmpdir("kh")
  -- h2's key written down under h1's address: a mismatch
  local line = env.hosts[2].host_key_line:gsub("^%S+", env.hosts[1].addr)
  fs.write(d .. "/wrong_known_hosts", line .. "\n")
  local c, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/wrong_known_hosts" })))
  lu.assertNil(c)
  lu.assertStrContains(msg, "host key mismatch for " .. env.hosts[1].addr .. " (ssh-ed25519")
  lu.assertStrContains(msg, "refusing to connect")
  -- a line that cannot be read hides none after it: the mismatch stands,
  -- accept-new or not, and nothing is recorded
  fs.write(d .. "/bad_first", "this is not a valid line\nx.example\n" .. line .. "\n")
  c, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/bad_first",
                                                                host_key = "accept-new" })))
  lu.assertNil(c)
  lu.assertStrContains(msg, "host key mismatch")
  lu.assertEquals(select(2, H.read(d .. "/bad_first"):gsub("\n", "")), 3)
  -- Windows line ends (a file copied from a Windows machine)
  fs.write(d .. "/crlf", "# hosts\r\n" .. env.hosts[1].host_key_line .. "\r\n")
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/crlf" }))))
  c:close()
  -- unknown host, strict: refused
  c, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/empty" })))
  lu.assertNil(c)
  lu.assertStrContains(msg, "is not in " .. d .. "/empty")
  -- accept-new records the key and connects
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/new",
                                                                    host_key = "accept-new" }))))
  c:close()
  lu.assertStrContains(H.read(d .. "/new"), env.hosts[1].addr .. " ssh-ed25519 ")
  -- and the recorded key is then accepted strictly
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/new" }))))
  c:close()
  -- another port is another host ("[addr]:port"): the port-22 line, here
  -- with another key, neither refuses it nor vouches for it
  fs.write(d .. "/ports", line .. "\n")
  c, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/ports", port = 2222 })))
  lu.assertNil(c)
  lu.assertStrContains(msg, "is not in " .. d .. "/ports")
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/ports", port = 2222,
                                                                    host_key = "accept-new" }))))
  c:close()
  lu.assertStrContains(H.read(d .. "/ports"), "[" .. env.hosts[1].addr .. "]:2222 ssh-ed25519 ")
  c = assert(ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/ports", port = 2222 }))))
  c:close()
  -- a key marked @revoked is never accepted: beside its good line, or new
  local revoked = "@revoked * " .. env.hosts[1].host_key_line:match("^%S+%s+(.*)$") .. "\n"
  fs.write(d .. "/revoked", env.hosts[1].host_key_line .. "\n" .. revoked)
  fs.write(d .. "/revoked_only", revoked)
  for _, case in ipairs({ { "revoked", "strict" }, { "revoked_only", "accept-new" } }) do
    c, msg = ssh_c.connect(rasrun.ssh.settings(T.worker(env, 1, { known_hosts = d .. "/" .. case[1],
                                                                  host_key = case[2] })))
    lu.assertNil(c)
    lu.assertStrContains(msg, "is marked @revoked in " .. d .. "/" .. case[1])
  end
  lu.assertEquals(H.read(d .. "/revoked_only"), revoked)
end

function TestSsh:test_ssh_config_is_honoured()
  local home = H.tmpdir("home")
  fs.mkdirs(home .. "/.ssh")
  fs.write(home .. "/.ssh/config", ([[
Host node1
    HostName %s
    User root
    Port 22
    IdentityFile %s
Host *
    User nobody
]]):format(env.hosts[1].addr, env.key))
  local old = os.getenv("HOME")
  sys.setenv("HOME", home)
  local ok, s = pcall(rasrun.ssh.settings, T.worker(env, 1, { host = "node1", user = false, identity = false }))
  sys.setenv("HOME", old)
  lu.assertTrue(ok, s)
  lu.assertEquals(s.hostname, env.hosts[1].addr)
  lu.assertEquals(s.user, "root")
  lu.assertEquals(s.identities, { env.key })
  local c = assert(require("rasrun.ssh_c").connect(s))
  c:close()
end

function TestSsh:test_heterogeneous_pool_matches_a_local_run()
  local plans = {}
  for i = 1, 6 do plans[i] = { title = "p" .. i, seconds = 0.4 } end
  local prj = project(plans)
  local local_run = run(rasrun.pool { H.local_worker("here", 2) }, prj, { force = true })
  lu.assertTrue(local_run.ok)
  local wsel = {}
  for _, r in ipairs(local_run.results) do wsel[r.plan] = rasrun.results.max_wsel(r.result, "Sample 2D").wsel end
  local pool = rasrun.pool { H.local_worker("here", 1), T.worker(env, 1), T.worker(env, 2) }
  local mixed = run(pool, prj, { force = true })
  lu.assertTrue(mixed.ok)
  local on = {}
  for _, r in ipairs(mixed.results) do
    on[r.worker] = true
    lu.assertEquals(rasrun.results.max_wsel(r.result, "Sample 2D").wsel, wsel[r.plan])
    lu.assertTrue(rasrun.checks.standard {}(r.result).ok)
    lu.assertStrContains(H.read(r.history[1].log), "Finished Unsteady Flow Simulation")
  end
  lu.assertTrue(on.h1 and on.h2, "both SSH hosts ran plans")
  -- the hosts keep nothing of the run but their file cache
  for i = 1, 2 do
    for _, n in ipairs(fs.list(env.hosts[i].work)) do lu.assertEquals(n, ".rasrun-cache") end
  end
end

function TestSsh:test_a_second_run_sends_far_fewer_bytes()
  local plans = {}
  for i = 1, 4 do plans[i] = { title = "p" .. i, seconds = 0.1 } end
  local prj = project(plans)
  local function sent(r)
    local n = 0
    for _, res in ipairs(r.results) do
      for _, h in ipairs(res.history) do n = n + (h.bytes_up or 0) end
    end
    return n
  end
  local function why(r) -- what failed, should a run fail
    local out = {}
    for _, res in ipairs(r.results) do
      if res.status ~= "ok" then out[#out + 1] = ("%s %s: %s"):format(res.key, res.status, tostring(res.reason)) end
    end
    return table.concat(out, "; ")
  end
  local pool = rasrun.pool { T.worker(env, 3) }
  local first = run(pool, prj, { force = true })
  lu.assertTrue(first.ok, why(first))
  local second = run(pool, prj, { force = true })
  lu.assertTrue(second.ok, why(second))
  lu.assertTrue(sent(first) > 4 * 4000, "the first run sends every plan's files: " .. sent(first))
  lu.assertEquals(sent(second), 0)
end

-- Results that come back from a host replace the project's old ones, and
-- nothing here is copied into a work folder to take those old files again:
-- beyond the few kept for reuse, the scheduler's helper removes them.
function TestSsh:test_many_replaced_results_leave_nothing_behind()
  local plans = {}
  for i = 1, 24 do plans[i] = { title = "p" .. i, seconds = 0 } end
  local prj = project(plans)
  local pool = rasrun.pool { T.worker(env, 3, { slots = 3 }) }
  lu.assertTrue(run(pool, prj, { force = true }).ok)
  local second = run(pool, prj, { force = true, run_dir = prj.dir .. "/run2" })
  lu.assertTrue(second.ok)
  for _, r in ipairs(second.results) do
    lu.assertEquals(fs.stat(r.result).nlink, 1)
    lu.assertTrue(rasrun.checks.standard {}(r.result).ok)
  end
  lu.assertFalse(fs.exists(prj.dir .. "/run2/.spares"))
  for _, name in ipairs(fs.list(prj.dir)) do lu.assertNil(name:find("rasrun-", 1, true), name) end
end

function TestSsh:test_unreachable_and_refusing_hosts_cost_a_message_not_a_hang()
  -- plans long enough for the unreachable host's 1 s connect timeout to pass
  local prj = project({ { title = "a", seconds = 2 }, { title = "b", seconds = 2 } })
  local wrong = H.tmpdir("key") .. "/wrong"
  sys.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrong })
  local downs = {}
  local pool = rasrun.pool {
    T.worker(env, 1, { name = "ghost", host = T.nobody(env), connect_timeout = 1 }),
    T.worker(env, 2, { name = "locked", identity = wrong, agent = false }),
    T.worker(env, 3),
  }
  local t0 = sys.monotonic()
  local r = run(pool, prj, { on_event = function(ev)
    if ev.type == "worker_down" then downs[ev.worker] = ev.reason end
  end })
  lu.assertTrue(r.ok)
  lu.assertTrue(sys.monotonic() - t0 < 20)
  for _, res in ipairs(r.results) do lu.assertEquals(res.worker, "h3") end
  lu.assertStrContains(downs.ghost, "cannot connect")
  lu.assertStrContains(downs.locked, "authentication failed")
  -- with only the refusing worker, the plans fail at once: waiting out
  -- down_grace (30 s) cannot mend a refused login
  t0 = sys.monotonic()
  r = run(rasrun.pool { T.worker(env, 2, { name = "locked", identity = wrong, agent = false }) }, prj,
    { force = true })
  lu.assertFalse(r.ok)
  lu.assertTrue(sys.monotonic() - t0 < 10, ("%.1f s"):format(sys.monotonic() - t0))
  for _, res in ipairs(r.results) do
    lu.assertEquals(res.status, "failed")
    lu.assertStrContains(res.reason, "no worker available: locked (")
    lu.assertStrContains(res.reason, "authentication failed")
  end
end

function TestSsh:test_remote_failures_are_checked_and_retried()
  local prj = project({ { title = "crash on h1", mode = "crash@h1", seconds = 0.1 },
                        { title = "volume", mode = "volume", seconds = 0.1 } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 1 }), H.local_worker("here", 1, { tier = 1 }) }
  local r = run(pool, prj, { retries = 1, plans = { "01" } })
  local res = r.results[1]
  lu.assertEquals(res.status, "ok")
  lu.assertEquals(res.history[1].worker, "h1")
  lu.assertStrContains(res.history[1].reason, "the engine exited with code 174")
  lu.assertEquals(res.history[2].worker, "here")
  r = run(rasrun.pool { T.worker(env, 1) }, prj, { plans = { "02" } })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "volume accounting error 5.3% exceeds 1%")
end

-- keep_scratch on an SSH host: the failed attempt's folder is moved aside
-- before the next attempt in its slot empties the slot, and stays after
-- the run; the slot folders go.
function TestSsh:test_kept_folders_stay_on_the_host_and_the_next_plan_runs()
  local prj = project({ { title = "fails", mode = "unstable", seconds = 0.1 },
                        { title = "works", seconds = 0.1 } })
  local r = run(rasrun.pool { T.worker(env, 1, { slots = 1 }) }, prj, { keep_scratch = true })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertEquals(r.results[2].status, "ok", tostring(r.results[2].reason))
  local work = env.hosts[1].work
  local kept = fs.glob(work .. "/*/Sample_p01-a1")
  lu.assertEquals(#kept, 1)
  lu.assertTrue(#fs.list(kept[1]) > 0, "the kept folder is empty")
  lu.assertEquals(fs.glob(work .. "/*/h1.*"), {})
end

-- Two workers of one run on the same host and work folder: one keeps a
-- failed attempt's folder, and the other, ending, leaves it there.
function TestSsh:test_a_kept_folder_survives_another_worker_on_its_host()
  local prj = project({ { title = "fails", mode = "unstable", seconds = 0.1 },
                        { title = "works", seconds = 0.1 } })
  local r = run(rasrun.pool { T.worker(env, 1, { name = "h1b", slots = 1, tier = 0 }),
                              T.worker(env, 1, { name = "h1a", slots = 1, tier = 1 }) },
    prj, { keep_scratch = true })
  lu.assertEquals(r.results[1].status, "failed")
  local kept = fs.glob(env.hosts[1].work .. "/*/Sample_p01-a1")
  lu.assertEquals(#kept, 1)
  lu.assertTrue(#fs.list(kept[1]) > 0, "the kept folder is empty")
  lu.assertEquals(fs.glob(env.hosts[1].work .. "/*/h1*.*"), {})
  fs.rmtree((kept[1]:gsub("/[^/]*$", ""))) -- the hosts serve the next tests
end

-- Inputs that cannot be sent (a FIFO) fail their plan at once, naming the
-- file; the run goes on.
function TestSsh:test_an_input_that_is_not_a_file_fails_its_plan()
  local prj, d = project({ { title = "a", seconds = 0.1 }, { title = "b", seconds = 0.1 } })
  os.remove(d .. "/Sample.b01")
  lu.assertEquals(sys.run({ "mkfifo", d .. "/Sample.b01" }).code, 0)
  local r = run(rasrun.pool { T.worker(env, 1) }, prj)
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, d .. "/Sample.b01")
  lu.assertStrContains(r.results[1].reason, "not a regular file")
  lu.assertEquals(r.results[2].status, "ok", tostring(r.results[2].reason))
end

-- A read-only input is placed as a copy its owner can write, as on a
-- local worker: the engine writes into the .tmp.hdf.
function TestSsh:test_a_read_only_input_is_placed_writable()
  local home = H.engine_needing_a_writable_tmp_hdf(H.tmpdir("engine"))
  local prj, d = project({ { title = "a", seconds = 0.1 } })
  lu.assertEquals(sys.run({ "chmod", "444", d .. "/Sample.p01.tmp.hdf" }).code, 0)
  local r = run(rasrun.pool { T.worker(env, 1, { engine = { kind = "linux", home = home } }) }, prj)
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
end

-- A project whose file names hold a newline and shell text runs as any
-- other: nothing of the names reaches the host's shell as a command.
function TestSsh:test_file_names_never_run_as_commands_on_the_host()
  local src = H.tmpdir("nlsrc")
  H.project(src, { { title = "a", seconds = 0.1 } })
  local d = H.tmpdir("nl")
  local name = "X\nRASRUN_STEPS_END\ntouch PWNED #"
  for _, f in ipairs(fs.list(src)) do
    local ext = f:match("^Sample(%..*)$")
    if ext then lu.assertEquals(sys.run({ "cp", "-p", src .. "/" .. f, d .. "/" .. name .. ext }).code, 0) end
  end
  local prj = assert(rasrun.project.open(d .. "/" .. name .. ".prj"))
  local r = run(rasrun.pool { T.worker(env, 1) }, prj)
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
  lu.assertEquals(sys.run({ "find", env.hosts[1].work, env.hosts[1].home, "-name", "PWNED" }).stdout, "")
end

-- pcall(fn, ...) with the first host's link limited to rate both ways (tc
-- tbf on each end of its veth pair: on ours for what goes to the host, on
-- the host's for what comes from it).
local function throttled(rate, fn, ...)
  local h = env.hosts[1]
  local ends = { {}, { "ip", "netns", "exec", h.ns } }
  local devs = { h.veth, h.veth:sub(1, -2) .. "b" }
  local function tc(i, ...)
    local argv = { table.unpack(ends[i]) }
    for _, a in ipairs({ "tc", "qdisc", ... }) do argv[#argv + 1] = a end
    return sys.run(argv).code
  end
  for i = 1, 2 do
    lu.assertEquals(tc(i, "add", "dev", devs[i], "root", "tbf", "rate", rate, "burst", "32kbit",
                       "latency", "400ms"), 0)
  end
  local res = table.pack(pcall(fn, ...))
  for i = 1, 2 do tc(i, "del", "dev", devs[i], "root") end
  return table.unpack(res, 1, res.n)
end

-- Calls runs_with(on_event), whose run this process sends SIGINT delay
-- seconds after its first event of type `on`, and checks that the run was
-- interrupted by it (runs_with raising what the run raised). Returns the
-- seconds from the signal to the end of runs_with.
local function ctrl_c_after(on, delay, runs_with)
  local sender, t0
  local ok, e = pcall(runs_with, function(ev)
    if ev.type == on and not sender then
      t0 = sys.monotonic() + delay
      sender = assert(H.spawn({ "sh", "-c", ("sleep %g; kill -INT %d"):format(delay, sys.pid()) }))
    end
  end)
  local took = t0 and sys.monotonic() - t0
  if sender then sys.wait(sender, 10) end
  lu.assertFalse(ok, "the run was not interrupted")
  lu.assertEquals(type(e) == "table" and e.exit_code, 130, tostring(e))
  return took
end

-- Runs fn(prj, pool, d) on a new one-plan project whose Sample.b01 holds mb
-- random megabytes more, with h1's link shaped to rate (throttled) and a pool
-- of h1 with a 2 s keepalive; the link is set free again whatever fn does.
-- Returns pcall's two results, then d and h1.
local function over_slow_link(mb, rate, fn)
  local prj, d = project({ { title = "a", seconds = 0.1 } })
  lu.assertEquals(sys.run({ "sh", "-c", ("head -c %d /dev/urandom >> '%s/Sample.b01'"):format(mb * 1000000, d) })
    .code, 0)
  local ok, r = throttled(rate, fn, prj, rasrun.pool { T.worker(env, 1, { keepalive = 2, io_timeout = 60 }) }, d)
  return ok, r, d, env.hosts[1]
end

-- A link cut while a plan's inputs are sent fails the attempt one I/O
-- timeout after the cut, not three (closing and removing the part file each
-- waited it out again on the dead link).
function TestSsh:test_a_link_cut_during_an_upload_fails_it_within_one_io_timeout()
  local h1 = env.hosts[1]
  local prj, d = project({ { title = "a", seconds = 0.1 } })
  lu.assertEquals(sys.run({ "sh", "-c", ("head -c 8000000 /dev/urandom >> '%s/Sample.b01'"):format(d) }).code, 0)
  local pool = rasrun.pool { T.worker(env, 1, { keepalive = 30, io_timeout = 3 }) }
  local cutter, cut_at, failed_at
  local ok, r = throttled("4mbit", function()
    return run(pool, prj, { on_event = function(ev)
      if ev.type == "start" and not cutter then
        h1.cut = true -- mended by tearDown whatever happens
        cutter = assert(H.spawn({ "sh", "-c", "sleep 2; ip link set " .. h1.veth .. " down" }))
        cut_at = sys.monotonic() + 2
      elseif ev.type == "attempt_failed" then
        failed_at = sys.monotonic()
      end
    end })
  end)
  if cutter then sys.wait(cutter, 10) end
  T.mend(h1)
  -- the part sent stays in the host's cache until a later run finds it an
  -- hour old (test_stale_partial_uploads_are_removed_from_the_cache)
  for _, f in ipairs(fs.glob(h1.work .. "/.rasrun-cache/*.rasrun-part-*")) do os.remove(f) end
  assert(ok, r)
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertTrue(failed_at - cut_at < 6.5, ("failed %.1f s after the cut"):format(failed_at - cut_at))
end

-- A file cut short on the host while it is fetched (40 MB at 32 Mbit/s,
-- truncated to 1 MB after half a second) fails its download, with the bytes
-- fetched and expected, and leaves no local file: the early end of a file
-- is not taken for the end of a whole one (a result fetched so, with checks
-- off, would have been committed as good).
function TestSsh:test_a_file_cut_short_while_it_is_fetched_fails_its_download()
  local remote = env.hosts[1].work .. "/cut.bin"
  lu.assertEquals(sys.run({ "sh", "-c", ("head -c 40000000 /dev/urandom > '%s'"):format(remote) }).code, 0)
  local c = assert(rasrun.ssh.connect(T.worker(env, 1)))
  local here = H.tmpdir("cut") .. "/cut.bin"
  local cutter
  local ok, got, err = throttled("32mbit", function()
    cutter = assert(H.spawn({ "sh", "-c", ("sleep 0.5; truncate -s 1000000 '%s'"):format(remote) }))
    return c:get(remote, here)
  end)
  if cutter then sys.wait(cutter, 10) end
  c:close()
  os.remove(remote)
  assert(ok, got)
  lu.assertNil(got, "the download was taken for whole")
  lu.assertStrContains(err, " of its 40000000 bytes (the file was cut short on the host while it was read)")
  lu.assertFalse(fs.exists(here))
end

-- An upload that takes longer than the keepalive interval (a large input
-- over a slow link: 4 MB at 8 Mbit/s, keepalive 2 s) is not taken for a
-- lost link.
function TestSsh:test_an_upload_longer_than_the_keepalive_interval_succeeds()
  local ok, r = over_slow_link(4, "8mbit", function(prj, pool) return run(pool, prj) end)
  assert(ok, r)
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
end

-- An input written while it is being sent (4 MB at 4 Mbit/s, its end
-- rewritten after a second) fails its plan, and the host's cache keeps no
-- file under a name that is not its content's hash.
function TestSsh:test_an_input_changed_while_it_is_sent_is_not_cached_under_its_old_hash()
  local writer
  local ok, r, d, h = over_slow_link(4, "4mbit", function(prj, pool, d)
    writer = assert(H.spawn({ "sh", "-c", "sleep 1; head -c 100000 /dev/urandom | dd of='" .. d
      .. "/Sample.b01' bs=100000 seek=30 conv=notrunc status=none" }))
    return run(pool, prj)
  end)
  if writer then sys.wait(writer, 10) end
  assert(ok, r)
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, d .. "/Sample.b01 changed while it was being sent")
  for _, f in ipairs(fs.glob(h.work .. "/.rasrun-cache/*")) do
    local name = f:match("[^/]+$")
    if #name == 64 then
      lu.assertEquals(sys.run({ "sha256sum", f }).stdout:sub(1, 64), name)
    end
  end
end

-- Ctrl-C while a plan's inputs are still being sent (8 MB at 4 Mbit/s:
-- 16 s) stops the upload: the run ends within seconds, not when the upload
-- would have, and the part sent is not left in the host's cache.
function TestSsh:test_ctrl_c_stops_an_upload_in_progress()
  local d, h
  local took = ctrl_c_after("start", 2, function(on_event)
    local ok, e
    ok, e, d, h = over_slow_link(8, "4mbit", function(prj, pool) return run(pool, prj, { on_event = on_event }) end)
    if not ok then error(e, 0) end
  end)
  lu.assertTrue(took < 8, ("the run took %.1f s after Ctrl-C"):format(took))
  local sum = sys.run({ "sha256sum", d .. "/Sample.b01" }).stdout:sub(1, 64)
  lu.assertFalse(fs.exists(h.work .. "/.rasrun-cache/" .. sum), "the file reached the cache")
  lu.assertEquals(fs.glob(h.work .. "/.rasrun-cache/*.rasrun-part-*"), {})
end

-- A partial upload that a lost connection or a killed controller left in
-- the host's cache is removed when a later run lists the cache, once it is
-- an hour old (a younger one may be another run's upload in progress).
function TestSsh:test_stale_partial_uploads_are_removed_from_the_cache()
  local cache = env.hosts[1].work .. "/.rasrun-cache"
  assert(fs.mkdirs(cache))
  local stale = cache .. "/" .. ("a"):rep(64) .. ".rasrun-part-0123456789abcdef"
  local young = cache .. "/" .. ("b"):rep(64) .. ".rasrun-part-fedcba9876543210"
  assert(fs.write(stale, "half an upload"))
  assert(fs.write(young, "an upload going on"))
  fs.touch(stale, sys.now() - 7200)
  local prj = project({ { title = "a", seconds = 0.1 } })
  local r = run(rasrun.pool { T.worker(env, 1) }, prj)
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
  lu.assertFalse(fs.exists(stale))
  lu.assertTrue(fs.exists(young))
  os.remove(young)
end

function TestSsh:test_a_quiet_engine_on_a_healthy_link_is_not_lost()
  -- 9 s in four steps: over 2 s without a byte from the engine, longer than
  -- libssh2's shortest keepalive interval
  local prj = project({ { title = "quiet", seconds = 9 } })
  local r = run(rasrun.pool { T.worker(env, 1, { keepalive = 1 }) }, prj)
  lu.assertEquals(r.results[1].status, "ok", r.results[1].reason)
  lu.assertEquals(r.results[1].attempts, 1)
end

-- A helper the engine left running in its process group on the host ends
-- with it, as on a local worker.
function TestSsh:test_a_helper_left_in_the_engines_group_ends_with_it()
  local home = H.engine_leaving_a_helper(H.tmpdir("engine"))
  local prj = project({ { title = "a", seconds = 0.1 } })
  local r = run(rasrun.pool { T.worker(env, 1, { engine = { kind = "linux", home = home } }) }, prj)
  lu.assertEquals(r.results[1].status, "ok", tostring(r.results[1].reason))
  H.wait_for(function() return #H.processes_under(home) == 0 end, 5, "the helper on h1 to end")
end

-- Ctrl-C with several engines on a host: each ends at SIGTERM, and the run
-- does not wait each engine's kill_grace out in turn.
function TestSsh:test_ctrl_c_does_not_wait_out_the_grace_engine_by_engine()
  local prj = project({ { title = "a", seconds = 60 }, { title = "b", seconds = 60 },
                        { title = "c", seconds = 60 }, { title = "d", seconds = 60 } })
  local launched, sender, t0 = 0, nil, nil
  local ok, e = pcall(run, rasrun.pool { T.worker(env, 1, { slots = 4, kill_grace = 5 }) }, prj,
    { on_event = function(ev)
      if ev.type == "launched" then launched = launched + 1 end
      if launched == 4 and not sender then
        H.wait_for(function() return #T.engines(env.hosts[1]) >= 4 end, 10, "four engines on h1")
        t0 = sys.monotonic()
        sender = assert(H.spawn({ "sh", "-c", "kill -INT " .. sys.pid() }))
      end
    end })
  local took = t0 and sys.monotonic() - t0
  if sender then sys.wait(sender, 10) end
  lu.assertFalse(ok, "the run was not interrupted")
  lu.assertEquals(type(e) == "table" and e.exit_code, 130, tostring(e))
  lu.assertTrue(took < 8, ("the run took %.1f s after Ctrl-C"):format(took))
  H.wait_for(function() return #T.engines(env.hosts[1]) == 0 end, 10, "the engines on h1 to go")
end

-- A host whose link was cut and mended during the run: the run's folders
-- there are removed at its end all the same (the worker had not connected
-- again, the run being over before it tried).
function TestSsh:test_a_host_whose_link_came_back_is_cleaned_at_the_end()
  local h1 = env.hosts[1]
  local prj = project({ { title = "first", seconds = 0.1 }, { title = "second", seconds = 0.5 } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 1, keepalive = 1, io_timeout = 2 }),
                             H.local_worker("here", 1, { tier = 1 }) }
  local r = run(pool, prj, { after = { ["02"] = { "01" } }, retries = 1, on_event = function(ev)
    if ev.type == "done" and ev.plan == "01" then T.cut(h1) end
    if ev.type == "attempt_failed" and ev.worker == "h1" then T.mend(h1) end
  end })
  lu.assertEquals(H.result(r, "01").worker, "h1")
  lu.assertEquals(H.result(r, "02").status, "ok")
  lu.assertEquals(fs.glob(h1.work .. "/" .. r.id .. "*"), {})
end

-- An idle host whose link is cut (h1 has done its plan; the other runs on
-- a local worker): the kernel's keepalives find it gone within moments, and
-- the run's end does not wait io_timeout to remove its folders over the
-- dead link.
function TestSsh:test_an_idle_host_with_a_cut_link_is_found_down_and_does_not_hold_up_the_end()
  local h1 = env.hosts[1]
  local prj = project({ { title = "quick", seconds = 0.1 }, { title = "long", seconds = 8 } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 1, keepalive = 2, io_timeout = 40, connect_timeout = 2 }),
                             H.local_worker("here", 1, { tier = 1 }) }
  local cut_at, down_at, down_reason, long_done_at
  local r = run(pool, prj, { on_event = function(ev)
    if ev.type == "done" and ev.plan == "01" then
      T.cut(h1)
      cut_at = sys.monotonic()
    elseif ev.type == "worker_down" and ev.worker == "h1" and not down_at then
      down_at, down_reason = sys.monotonic(), ev.reason
    elseif ev.type == "done" and ev.plan == "02" then
      long_done_at = sys.monotonic()
    end
  end })
  local ended_at = sys.monotonic()
  lu.assertTrue(r.ok)
  lu.assertEquals(H.result(r, "01").worker, "h1")
  lu.assertEquals(H.result(r, "02").worker, "here")
  lu.assertNotNil(down_at, "no worker_down for h1 while it sat idle")
  lu.assertStrContains(down_reason, "no answer while idle")
  lu.assertTrue(down_at - cut_at < 7, ("found down %.1f s after the cut"):format(down_at - cut_at))
  lu.assertTrue(ended_at - long_done_at < 6, ("the run ended %.1f s after its last plan"):format(ended_at - long_done_at))
end

-- A host that closes the idle connection itself (its sshd restarted, or its
-- ClientAliveInterval went unanswered): another is opened at once, the host
-- is not called down, and the next plan runs there at its first attempt
-- (it failed on the dead session, and spent a retry).
function TestSsh:test_an_idle_connection_the_host_closes_is_opened_again()
  local h1 = env.hosts[1]
  local prj = project({ { title = "first", seconds = 0.1 }, { title = "second", seconds = 0.1 } })
  local downs = 0
  local r = run(rasrun.pool { T.worker(env, 1, { slots = 1, keepalive = 15 }) }, prj,
    { after = { ["02"] = { "01" } }, retries = 1, on_event = function(ev)
      if ev.type == "done" and ev.plan == "01" then
        -- the sshd processes serving the session (children of the listener)
        lu.assertEquals(sys.run({ "pkill", "-KILL", "-P", tostring(h1.sshd_pid) }).code, 0)
        sys.run({ "sleep", "1" }) -- the worker's thread sees the close meanwhile
      elseif ev.type == "worker_down" then
        downs = downs + 1
      end
    end })
  lu.assertTrue(r.ok)
  lu.assertEquals(H.result(r, "02").worker, "h1")
  lu.assertEquals(H.result(r, "02").attempts, 1)
  lu.assertEquals(downs, 0)
end

-- A copy of the simulated Linux engine whose RasUnsteady is a shell script
-- (lines, its first "#!/bin/sh" added) that can run the real one as
-- "$(dirname "$0")/real/RasUnsteady" (the simulated engine goes by its
-- name: the real one keeps it). Returns the copy's home.
local function scripted_engine(lines)
  local home = H.tmpdir("engine") .. "/linux"
  lu.assertEquals(sys.run({ "cp", "-a", H.sim("linux"), home }).code, 0)
  lu.assertEquals(sys.run({ "mkdir", home .. "/bin/real" }).code, 0)
  lu.assertEquals(sys.run({ "mv", home .. "/bin/RasUnsteady", home .. "/bin/real/" }).code, 0)
  table.insert(lines, 1, "#!/bin/sh")
  lines[#lines + 1] = ""
  assert(fs.write(home .. "/bin/RasUnsteady", table.concat(lines, "\n")))
  lu.assertEquals(sys.run({ "chmod", "755", home .. "/bin/RasUnsteady" }).code, 0)
  return home
end

-- A step before the engine that fails on a host is named, as on this
-- machine; the engine's own failure after it is the engine's.
function TestSsh:test_a_failing_preprocessor_on_a_host_is_named()
  local home = H.engine_whose_preprocessor_fails(H.tmpdir("engine"))
  local prj = project({ { title = "a", seconds = 0 } })
  local worker = { slots = 1, engine = { kind = "linux", home = home, preprocess = true } }
  local r = run(rasrun.pool { T.worker(env, 1, worker) }, prj)
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "RasGeomPreprocess (step 1 of 2, before the engine) exited with code 2")
  -- the preprocessor works; the engine crashes
  worker.engine.home = H.sim("linux")
  prj = project({ { title = "b", mode = "crash", seconds = 0 } })
  r = run(rasrun.pool { T.worker(env, 1, worker) }, prj)
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "the engine exited with code 174")
end

-- Ctrl-C while a timed-out attempt's files come back over a slow link: the
-- run ends at once, not when they are all there (or cancel_wait gives up).
function TestSsh:test_ctrl_c_stops_a_timed_out_attempts_files_coming_back()
  -- an engine that writes 8 MB of compute messages, then hangs
  local home = scripted_engine({ "head -c 8000000 /dev/urandom > Sample.p01.computeMsgs.txt",
    'exec "$(dirname "$0")/real/RasUnsteady" "$@"' })
  local prj = project({ { title = "hangs", mode = "hang" } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 1, kill_grace = 0.2, keepalive = 2, io_timeout = 60,
                                                engine = { kind = "linux", home = home } }) }
  -- 8 MB at 4 Mbit/s: 16 s to come back; Ctrl-C 2 s after the timeout
  local took = ctrl_c_after("launched", 3, function(on_event)
    local ok, e = throttled("4mbit", run, pool, prj, { timeout = 1, on_event = on_event,
                                                        run_dir = prj.dir .. "/run" })
    if not ok then error(e, 0) end
  end)
  lu.assertTrue(took < 6, ("the run took %.1f s after Ctrl-C"):format(took))
  -- it timed out before the Ctrl-C: failed, not cancelled (a resume would
  -- run a cancelled plan again, and wait out its timeout again)
  local plan = json.decode(H.read(prj.dir .. "/run/run.json")).plans[1]
  lu.assertEquals(plan.status, "failed")
  lu.assertStrContains(plan.reason, "timed out")
end

-- While one plan's files come back from a host over a slow link (6 MB at
-- 4 Mbit/s: 12 s), a plan of the same host that hangs is stopped at its
-- timeout, not when the transfer ends; and the plan whose files come back
-- is not failed by its timeout meanwhile (its engine ended well).
function TestSsh:test_a_timeout_is_enforced_while_another_plans_files_come_back()
  -- plan 01 writes 6 MB of compute messages and ends; plan 02 hangs, and
  -- notes when it is told to stop
  local stamp = H.tmpdir("stamp") .. "/stopped"
  local home = scripted_engine({
    'case "$1" in',
    "  *p01*) head -c 6000000 /dev/urandom > Sample.p01.computeMsgs.txt",
    '         exec "$(dirname "$0")/real/RasUnsteady" "$@" ;;',
    "esac",
    ("trap 'date +%%s.%%N > %s; exit 143' TERM"):format(stamp),
    '"$(dirname "$0")/real/RasUnsteady" "$@" &',
    "wait" })
  local prj = project({ { title = "big output", seconds = 0 }, { title = "hangs", mode = "hang" } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 2, kill_grace = 0.5, keepalive = 2, io_timeout = 60,
                                                engine = { kind = "linux", home = home } }) }
  local launched, fetched
  local ok, r = throttled("4mbit", run, pool, prj, { timeout = 2, on_event = function(ev)
    if ev.type == "launched" and ev.plan == "02" then launched = sys.now() end
    if ev.type == "done" and ev.plan == "01" then fetched = sys.now() end
  end })
  assert(ok, r)
  lu.assertEquals(H.result(r, "01").status, "ok", H.result(r, "01").reason)
  lu.assertEquals(H.result(r, "02").status, "failed")
  lu.assertStrContains(H.result(r, "02").reason, "timed out")
  local stopped = tonumber(H.read(stamp))
  lu.assertNotNil(stopped, "the hung engine was never told to stop")
  -- (the kill goes over a connection of its own, on the busy link: seconds)
  lu.assertTrue(stopped - launched < 2 + 4, ("stopped %.1f s after its launch"):format(stopped - launched))
  lu.assertTrue(stopped < fetched - 5, ("stopped %.1f s before plan 01's files were back"):format(fetched - stopped))
end

-- While one plan's files come back over a slow link (8 MB at 4 Mbit/s:
-- 16 s), a plan of the same host whose engine ends meanwhile, well within
-- its timeout, is seen to end then: its timeout stops counting (it used to
-- run on until the transfer was over, and fail the plan). (The watch that
-- sees it connects over the busy link: its timeout leaves seconds for that.)
function TestSsh:test_an_engine_that_ends_during_another_plans_transfer_is_not_timed_out()
  -- plan 01 writes 8 MB of compute messages
  local home = scripted_engine({
    'case "$1" in',
    "  *p01*) head -c 8000000 /dev/urandom > Sample.p01.computeMsgs.txt ;;",
    "esac",
    'exec "$(dirname "$0")/real/RasUnsteady" "$@"' })
  local prj = project({ { title = "big output", seconds = 0 }, { title = "one second", seconds = 1 } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 2, keepalive = 2, io_timeout = 60,
                                                engine = { kind = "linux", home = home } }) }
  local t0, fetched = sys.now(), nil
  local ok, r = throttled("4mbit", run, pool, prj, { timeout = 9, on_event = function(ev)
    if ev.type == "done" and ev.plan == "01" then fetched = sys.now() end
  end })
  assert(ok, r)
  lu.assertTrue(fetched - t0 > 12, ("plan 01's files came back in %.1f s: no slow transfer"):format(fetched - t0))
  lu.assertEquals(H.result(r, "01").status, "ok", H.result(r, "01").reason)
  lu.assertEquals(H.result(r, "02").status, "ok", H.result(r, "02").reason)
  -- its engine's time, as the host saw it end (not the transfer's)
  local engine_seconds
  for line in io.lines(r.run_dir .. "/journal.jsonl") do
    local e = json.decode(line)
    if e.ev == "attempt_end" and e.plan == "02" then engine_seconds = e.engine_seconds end
  end
  lu.assertTrue(engine_seconds > 0.9 and engine_seconds < 3, ("plan 02's engine took %s s"):format(engine_seconds))
end

-- An engine that is not where the worker says is looked for when the host
-- is first reached: the worker is down for good, naming the program, as a
-- local one is (its plans fail at once with no other worker, instead of
-- failing one attempt after another there).
function TestSsh:test_a_missing_engine_on_the_host_is_named()
  local prj = project({ { title = "a", seconds = 0.1 } })
  local r = run(rasrun.pool { T.worker(env, 1, { engine = { kind = "linux", home = "/nowhere" } }) }, prj,
    { retries = 2 })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertEquals(r.results[1].attempts, 0)
  lu.assertStrContains(r.results[1].reason, "no worker available: h1 (engine /nowhere/bin/RasUnsteady cannot be run on ")
  lu.assertStrContains(r.results[1].reason, ": no such executable file; is engine.home right?)")
end

-- A work folder the host cannot make or write is looked at when the host
-- is first reached: the worker is down for good, saying so, and the plans
-- go to the other host instead of failing one attempt after another there.
function TestSsh:test_a_work_folder_the_host_cannot_make_takes_it_down()
  local prj = project({ { title = "a", seconds = 0.1 }, { title = "b", seconds = 0.1 }, { title = "c", seconds = 0.1 } })
  local r = run(rasrun.pool { T.worker(env, 1, { workdir = "/proc/nonexist/w" }), T.worker(env, 2, { slots = 1 }) },
    prj, { retries = 1 })
  for _, res in ipairs(r.results) do
    lu.assertEquals({ res.status, res.worker, res.attempts }, { "ok", "h2", 1 })
  end
  local down
  for _, e in ipairs(H.journal(r.run_dir)) do
    if e.ev == "worker_down" and e.worker == "h1" then down = e.reason end
  end
  lu.assertStrContains(down, "work folder /proc/nonexist/w on ")
  lu.assertStrContains(down, " cannot be made or written: mkdir: ")
end

-- A login script that greets (a .bashrc's echo, which bash reads for ssh
-- commands too) takes nothing's place: the login home, and so a relative
-- work folder ("~/..." as well), is what the host says it is.
function TestSsh:test_a_greeting_login_script_does_not_move_the_work_folder()
  T.add_user(env, "rrbash", "Gr33t-pw")
  local home = env.dir .. "/home-rrbash"
  assert(sys.run({ "usermod", "-s", "/bin/bash", "rrbash" }).code == 0)
  -- (the user reaches its home and the engine through the hosts' folder)
  assert(sys.run({ "chmod", "711", env.dir }).code == 0)
  assert(fs.write(home .. "/.bashrc", "echo 'Welcome to the cluster'\n"))
  sys.setenv("RR_TEST_PW", "Gr33t-pw")
  local prj = project({ { title = "a", seconds = 0.1 } })
  local ok, err = pcall(function()
    local w = T.worker(env, 1, { user = "rrbash", identity = false, agent = false, password_env = "RR_TEST_PW",
                                 workdir = "~/scratch" })
    lu.assertEquals(w.workdir, "scratch")
    local r = run(rasrun.pool { w }, prj)
    lu.assertEquals(r.results[1].status, "ok", r.results[1].reason)
    lu.assertTrue(fs.isdir(home .. "/scratch/.rasrun-cache"))
    lu.assertFalse(fs.exists(home .. "/Welcome to the cluster"))
  end)
  sys.setenv("RR_TEST_PW", nil)
  assert(ok, err)
end

function TestSsh:test_timeout_kills_the_remote_process_tree()
  local prj = project({ { title = "hangs", mode = "hang" } })
  -- inputs older than the run, as a project's are: SFTP dates files to the
  -- second, and the engine's open of its .tmp.hdf is all that changes it
  local tmp = prj.dir .. "/Sample.p01.tmp.hdf"
  lu.assertEquals(sys.run({ "touch", "-d", "@" .. math.floor(sys.now() - 60), tmp }).code, 0)
  local r = run(rasrun.pool { T.worker(env, 1, { slots = 1 }) }, prj, { timeout = 1.5 })
  lu.assertEquals(r.results[1].status, "failed")
  lu.assertStrContains(r.results[1].reason, "timed out")
  H.wait_for(function() return #T.engines(env.hosts[1]) == 0 end, 10, "the hung engine and its helper to go")
  -- what it had written comes back and is kept with the run, as on a local
  -- worker; the project has no result
  lu.assertEquals(fs.list(r.run_dir .. "/attempts/Sample_p01-a1"), { "Sample.p01.hdf" })
  lu.assertFalse(fs.exists(prj.dir .. "/Sample.p01.hdf"))
end

function TestSsh:test_cut_link_moves_plans_and_the_orphan_dies_when_it_returns()
  local h1 = env.hosts[1]
  local prj = project({ { title = "hangs on h1 only", mode = "hang@h1", seconds = 6 } })
  local pool = rasrun.pool { T.worker(env, 1, { slots = 1, keepalive = 1 }),
                             H.local_worker("here", 1, { tier = 1 }) }
  local cut_at, failed_at, alive_after_cut, up_again
  local r = run(pool, prj, { retries = 1, on_event = function(ev)
    if ev.type == "launched" and ev.worker == "h1" then
      -- wait until the engine really runs on h1, then cut its link
      H.wait_for(function() return #T.engines(h1) > 0 end, 10, "the engine on h1")
      T.cut(h1)
      cut_at = sys.monotonic()
    elseif ev.type == "attempt_failed" and ev.worker == "h1" then
      failed_at = sys.monotonic()
      alive_after_cut = #T.engines(h1) > 0
      T.mend(h1)
    elseif ev.type == "worker_up" and ev.worker == "h1" and failed_at then
      up_again = sys.monotonic()
    end
  end })
  if cut_at and not failed_at then T.mend(h1) end
  local res = r.results[1]
  lu.assertEquals(res.status, "ok")
  lu.assertEquals(res.history[1].worker, "h1")
  lu.assertStrContains(res.history[1].reason, "no answer")
  lu.assertEquals(res.history[2].worker, "here")
  -- keepalive 1 s: libssh2 sends every 2 s, so the link is lost after 4 s silent
  lu.assertTrue(failed_at - cut_at < 4 + 2, ("noticed %.1f s after the cut"):format(failed_at - cut_at))
  lu.assertTrue(alive_after_cut, "the engine outlived the cut link")
  lu.assertNotNil(up_again, "h1 came back during the run")
  H.wait_for(function() return #T.engines(h1) == 0 end, 10, "the orphaned engine on h1 to be stopped")
end

-- A host with sshd's default MaxSessions (10) and more slots than that: the
-- session sshd refuses is waited for, not taken for a lost link, and every
-- plan runs there, one session always kept free (for a kill command).
function TestSsh:test_more_slots_than_sshd_allows_sessions()
  local plans = {}
  for i = 1, 12 do plans[i] = { title = "p" .. i, seconds = 1.5 } end
  local prj = project(plans)
  local r = run(rasrun.pool { T.worker(env, 3, { slots = 12 }) }, prj)
  for _, res in ipairs(r.results) do
    lu.assertEquals(res.status, "ok", tostring(res.reason))
    lu.assertEquals(res.attempts, 1)
  end
  local most = H.max_overlap(r.results)
  lu.assertTrue(most <= 9, ("%d engines ran at once"):format(most))
end

-- A host whose sshd allows 2 sessions per connection: one goes to the
-- transfers, one to an engine, and none is left for a kill command. A
-- timeout still stops the engine (its channel is told its input ended, and
-- its watchdog on the host stops it) instead of asking for a session for
-- ever, and the run ends.
function TestSsh:test_a_timeout_on_a_host_with_two_sessions_ends()
  local h = env.hosts[2]
  local conf = H.read(h.dir .. "/sshd_config"):gsub("Port 22\n", "Port 2224\n")
    :gsub("sshd%.pid", "sshd-2224.pid"):gsub("MaxSessions 50", "MaxSessions 2")
  assert(fs.write(h.dir .. "/sshd_2224", conf))
  assert(H.spawn({ "ip", "netns", "exec", h.ns, "/usr/sbin/sshd", "-D", "-e", "-f", h.dir .. "/sshd_2224" },
                 { stdout = h.dir .. "/sshd-2224.log", stderr = h.dir .. "/sshd-2224.log" }))
  H.wait_for(function()
    return sys.run({ "ssh-keyscan", "-T", "1", "-p", "2224", h.addr }, { timeout = 5 }).code == 0
  end, 15, "sshd on port 2224")
  local prj = project({ { title = "hangs", mode = "hang" }, { title = "hangs too", mode = "hang" },
                        { title = "quick", seconds = 0.1 } })
  local t0 = sys.monotonic()
  local r = run(rasrun.pool { T.worker(env, 2, { port = 2224, host_key = "accept-new", slots = 2 }) }, prj,
    { timeout = 2 })
  lu.assertTrue(sys.monotonic() - t0 < 60, "the run took too long")
  for _, plan in ipairs({ "01", "02" }) do
    lu.assertEquals(H.result(r, plan).status, "failed")
    lu.assertStrContains(H.result(r, plan).reason, "timed out after 2 s")
  end
  lu.assertEquals(H.result(r, "03").status, "ok", H.result(r, "03").reason)
  H.wait_for(function() return #T.engines(h) == 0 end, 15, "the hung engines on h2 to be stopped")
end

-- Runs the plans on h1 with opts; once n engines run there, cuts its link
-- and sends this process SIGINT. Returns the seconds the run took after the
-- cut, once the engines on h1 are gone (sshd hears of the lost connection
-- when the mended link carries the first reset to it) and the run's folder
-- there, which rasrun could not reach at its end, is removed (what
-- `rasrun resume` would do).
local function ctrl_c_over_a_cut_link(plans, n, worker_opts, opts)
  local h1 = env.hosts[1]
  local prj = project(plans)
  local pool = rasrun.pool { T.worker(env, 1, worker_opts) }
  local launched, sender, cut_at = 0, nil, nil
  opts.on_event = function(ev)
    if ev.type == "launched" then launched = launched + 1 end
    if launched == n and not cut_at then
      H.wait_for(function() return #T.engines(h1) >= n end, 10, "the engines on h1")
      T.cut(h1)
      cut_at = sys.monotonic()
      sender = assert(H.spawn({ "sh", "-c", "sleep 0.5; kill -INT " .. sys.pid() }))
    end
  end
  local ok, e = pcall(run, pool, prj, opts)
  local took = cut_at and sys.monotonic() - cut_at
  if cut_at then T.mend(h1) end
  if sender then sys.wait(sender, 10) end
  lu.assertFalse(ok, "the run was not interrupted")
  lu.assertEquals(type(e) == "table" and e.exit_code, 130, tostring(e))
  H.wait_for(function() return #T.engines(h1) == 0 end, 40, "the engines on h1 to be stopped")
  for _, name in ipairs(fs.list(h1.work)) do
    if name ~= ".rasrun-cache" then fs.rmtree(h1.work .. "/" .. name) end
  end
  return took, prj
end

-- Ctrl-C with an engine running over a link that was just cut, before the
-- worker has seen the cut: after cancel_wait the attempt is written off, and
-- its reason says that its engine may still be running there.
function TestSsh:test_an_attempt_written_off_after_ctrl_c_says_why()
  local run_dir = H.tmpdir("run") .. "/run"
  ctrl_c_over_a_cut_link({ { title = "a", seconds = 60 } }, 1, { slots = 1, keepalive = 30, io_timeout = 60 },
    { run_dir = run_dir, cancel_wait = 1 })
  local plan = json.decode(H.read(run_dir .. "/run.json")).plans[1]
  lu.assertStrContains(plan.reason, "cancelled (Interrupt); did not stop within 1 s of the cancel: "
    .. "its engine may still be running on " .. env.hosts[1].addr)
end

-- Ctrl-C with engines running over a link that was just cut: the run ends
-- within about a keepalive interval, not a wait of io_timeout for the kill
-- command and then one per engine's channel.
function TestSsh:test_ctrl_c_over_a_cut_link_ends_the_run_soon()
  local took = ctrl_c_over_a_cut_link({ { title = "a", seconds = 60 }, { title = "b", seconds = 60 },
    { title = "c", seconds = 60 } }, 3, { slots = 3, keepalive = 5, io_timeout = 10 }, {})
  lu.assertTrue(took < 15, ("the run took %.1f s after the cut"):format(took))
end

function TestSsh:test_remote_workers_recipe_runs_a_ras_commander_pool()
  local plans = {}
  for i = 1, 4 do plans[i] = { title = "p" .. i, seconds = 0.3 } end
  local _, d = project(plans)
  local function ssh_entry(i)
    local h = env.hosts[i]
    return { name = h.name, worker_type = "ssh", hostname = h.addr, username = "root", key_path = env.key,
             known_hosts = env.known_hosts, remote_path = h.work, queue_priority = 0, cores_total = 2,
             cores_per_plan = 1, ras_exe_path = h.home .. "/bin/RasUnsteady", keepalive = 2 }
  end
  fs.write(d .. "/RemoteWorkers.json", json.encode({ workers = {
    ssh_entry(1), ssh_entry(2),
    { name = "pc-01", worker_type = "psexec", hostname = "pc-01", share_path = "\\\\pc-01\\RasRemote" },
  } }))
  local r = H.rasrun({ "run", "remote-workers", d .. "/RemoteWorkers.json", d .. "/Sample.prj" },
    { timeout = 120 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, 'skipping worker "pc-01": worker_type "psexec" is not supported by rasrun yet')
  lu.assertStrMatches(r.stdout, "01 +ok +h%d.*")
  for i = 1, 4 do lu.assertTrue(rasrun.checks.standard {}(("%s/Sample.p%02d.hdf"):format(d, i)).ok) end
end

-- A recipe file running the project on the test hosts' workers (for tests
-- that signal or kill the controller).
-- run_opts: more fields of the pool:run table, as Lua text
local function remote_recipe(d, hosts, run_opts)
  local lines = { "local rasrun = require 'rasrun'",
    ("package.path = %q .. '/tests/?.lua;' .. package.path"):format(H.root),
    ("local env = { hosts = {}, key = %q, known_hosts = %q }"):format(env.key, env.known_hosts) }
  local workers = {}
  for _, i in ipairs(hosts) do
    local h = env.hosts[i]
    lines[#lines + 1] = ("env.hosts[%d] = { name = %q, addr = %q, work = %q, home = %q }")
      :format(i, h.name, h.addr, h.work, h.home)
    workers[#workers + 1] = ("T.worker(env, %d)"):format(i)
  end
  lines[#lines + 1] = "local T = require 'testhosts'"
  lines[#lines + 1] = ("local pool = rasrun.pool { %s }"):format(table.concat(workers, ", "))
  lines[#lines + 1] = ("pool:run { project = %q, progress = 'plain', run_dir = %q, %s }")
    :format(d .. "/Sample.prj", d .. "/run", run_opts or "")
  fs.write(d .. "/remote.lua", table.concat(lines, "\n") .. "\n")
  return d .. "/remote.lua"
end

-- On a terminal, a plan whose input is on its way to the host shows how
-- much of the file has gone, and its name (4 MB at 8 Mbit/s: seconds of it).
function TestSsh:test_the_live_display_shows_an_upload_going()
  local _, d = project({ { title = "a", seconds = 0.1 } })
  lu.assertEquals(sys.run({ "sh", "-c", "head -c 4000000 /dev/urandom >> '" .. d .. "/Sample.b01'" }).code, 0)
  local recipe = remote_recipe(d, { 1 }, "progress = 'auto'")
  local h = env.hosts[1]
  lu.assertEquals(sys.run({ "tc", "qdisc", "add", "dev", h.veth, "root", "tbf", "rate", "8mbit",
                            "burst", "32kbit", "latency", "400ms" }).code, 0)
  local r = sys.run({ "script", "-qefc", H.bin .. " run " .. recipe, "/dev/null" },
                    { env = { TERM = "xterm", FAKE_RAS_SECONDS = "0.1" }, timeout = 120 })
  sys.run({ "tc", "qdisc", "del", "dev", h.veth, "root" })
  lu.assertEquals(r.code, 0, r.stdout)
  lu.assertStrMatches(r.stdout, ".*Sample/p01 +h1 +00:0%d +sending %d%.%d/4%.0 MB Sample%..*")
end

function TestSsh:test_sigint_leaves_no_engine_on_any_host()
  local _, d = project({ { title = "a", seconds = 60 }, { title = "b", seconds = 60 },
                         { title = "c", mode = "hang" } })
  local pid = assert(H.spawn({ H.bin, "run", remote_recipe(d, { 1, 2 }) },
    { stdout = d .. "/out", stderr = d .. "/err" }))
  H.wait_for(function()
    return #T.engines(env.hosts[1]) > 0 and #T.engines(env.hosts[2]) > 0
  end, 30, "engines on both hosts")
  sys.kill(pid, "INT")
  lu.assertEquals(sys.wait(pid, 60), 130, H.read(d .. "/err"))
  H.wait_for(no_engines_anywhere, 15, "no engine left on any host")
  lu.assertStrContains(H.read(d .. "/err"), "3 cancelled")
end

function TestSsh:test_sigkill_stops_remote_engines_and_resume_finishes()
  local _, d = project({ { title = "quick", seconds = 0.2 }, { title = "quick too", seconds = 0.2 },
                         { title = "slow", seconds = 60 }, { title = "slower", seconds = 60 } })
  local recipe = remote_recipe(d, { 1 })
  local pid = assert(H.spawn({ H.bin, "run", recipe }, { stdout = d .. "/out", stderr = d .. "/err" }))
  local function count(ev)
    local ok, entries = pcall(H.journal, d .. "/run")
    local n = 0
    for _, e in ipairs(ok and entries or {}) do if e.ev == ev then n = n + 1 end end
    return n
  end
  H.wait_for(function() return count("done") == 2 and count("launched") == 4 end, 30,
    "two plans done and two running on h1")
  H.wait_for(function() return #T.engines(env.hosts[1]) == 2 end, 10, "two engines on h1")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  -- the dead controller's connection closes: the watchdogs on h1 stop the engines
  H.wait_for(function() return #T.engines(env.hosts[1]) == 0 end, 15, "the engines on h1 to stop")
  local r = H.rasrun({ "resume", d .. "/run" }, { env = { FAKE_RAS_SECONDS = "0.2" }, timeout = 120 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "resuming run run")
  lu.assertNotStrContains(r.stderr, "cannot stop") -- the hosts' engines are stopped there, not refused here
  for i = 1, 4 do lu.assertTrue(rasrun.checks.standard {}(("%s/Sample.p%02d.hdf"):format(d, i)).ok) end
end

-- A controller killed while its engine runs a helper that left the
-- engine's process group (setsid, as stuck engine helpers do): the host's
-- watchdog stops both when the controller's connection drops.
function TestSsh:test_a_killed_controller_leaves_no_helper_on_the_host()
  local _, d = project({ { title = "hangs", mode = "hang" } })
  local pid = assert(H.spawn({ H.bin, "run", remote_recipe(d, { 1 }) },
    { stdout = d .. "/out", stderr = d .. "/err" }))
  local h1 = env.hosts[1]
  H.wait_for(function() return #T.engines(h1) >= 2 end, 30, "the engine and its helper on h1")
  sys.kill(pid, "KILL")
  sys.wait(pid, 10)
  H.wait_for(function() return #T.engines(h1) == 0 end, 15, "the engine and its helper to stop")
  for _, f in ipairs(fs.glob(h1.work .. "/2*")) do fs.rmtree(f) end -- the hosts serve the next tests
end

-- A controller killed after its last plan is done, before it could clean
-- up: the resume has nothing to run, and still removes the run's slot
-- folders from the host.
function TestSsh:test_resume_with_nothing_left_removes_the_hosts_slot_folders()
  local _, d = project({ { title = "a", seconds = 0.1 }, { title = "b", seconds = 0.1 } })
  local recipe = remote_recipe(d, { 1 }, "on_event = function(ev) if ev.type == 'done' then "
    .. "done = (done or 0) + 1 if done == 2 then rasrun.sys.kill(rasrun.sys.pid(), 'KILL') end end end")
  local r = H.rasrun({ "run", recipe }, { timeout = 60 })
  lu.assertEquals(r.code, 137, r.stderr)
  local work = env.hosts[1].work
  lu.assertEquals(#fs.glob(work .. "/*/h1.*"), 2, "the killed run left no slot folders to clean")
  r = H.rasrun({ "resume", d .. "/run" }, { timeout = 60 })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(fs.glob(work .. "/*/h1.*"), {})
  local run_id = H.journal(d .. "/run")[1].run_id
  lu.assertFalse(fs.exists(work .. "/" .. run_id), "the run's folder is still on the host")
end

-- A connection whose link is cut is closed in bounded time, and freed:
-- libssh2 gives up closing over a dead link and frees nothing, which left
-- the session allocated (the sanitized build's leak check fails the exit).
-- A child process holds the connection, so that its own exit code tells.
function TestSsh:test_a_connection_over_a_cut_link_is_closed_and_freed()
  local h1 = env.hosts[1]
  local dir = H.tmpdir("cutclose")
  local settings = rasrun.ssh.settings(T.worker(env, 1))
  assert(fs.write(dir .. "/settings.json", json.encode(settings)))
  assert(fs.write(dir .. "/close.lua", [[
    local json, fs, sys = require "rasrun.json", require "rasrun.fs", require "rasrun.sys"
    local dir = arg[1]
    local c = assert(require("rasrun.ssh_c").connect(json.decode(fs.read(dir .. "/settings.json"))))
    assert(c:stat("/"))                       -- an SFTP session too
    fs.write(dir .. "/connected", "")
    for _ = 1, 200 do                          -- the test cuts the link
      if fs.exists(dir .. "/cut") then break end
      sys.sleep(0.05)
    end
    local t0 = sys.monotonic()
    c:close()
    print(("closed in %.1f s"):format(sys.monotonic() - t0))
  ]]))
  local child = assert(H.spawn({ H.bin, "run", dir .. "/close.lua", dir },
                               { stdout = dir .. "/out", stderr = dir .. "/err" }))
  H.wait_for(function() return fs.exists(dir .. "/connected") end, 20, "the child to connect")
  T.cut(h1)
  assert(fs.write(dir .. "/cut", ""))
  local code = sys.wait(child, 30)
  T.mend(h1)
  local out, err = H.read(dir .. "/out"), H.read(dir .. "/err")
  lu.assertEquals(code, 0, out .. err)
  local secs = tonumber(out:match("closed in ([%d.]+) s"))
  lu.assertNotNil(secs, out .. err)
  -- the peer gets 2 s to answer the close; then the socket is shut
  lu.assertTrue(secs < 3.5, out)
end

-- ~/.ssh/config syntax, read without a host: "Key=value", "Key = value" and
-- quoted values are all ssh_config.
TestSshConfig = {}

function TestSshConfig:tearDown() H.cleanup() end

function TestSshConfig:test_equals_signs_and_quoted_values()
  local file = H.tmpdir("sshcfg") .. "/config"
  assert(fs.write(file, table.concat({
    "Host node1", "  HostName=10.1.0.5", "  Port = 2222", '  User "ras user"',
    '  IdentityFile "/keys/my key"', "Host *", "  User nobody", "" }, "\n")))
  local r = require("rasrun.sshconfig").resolve("node1", file)
  lu.assertEquals(r.hostname, "10.1.0.5")
  lu.assertEquals(r.port, 2222)
  lu.assertEquals(r.user, "ras user")
  lu.assertEquals(r.identity_files, { "/keys/my key" })
  lu.assertEquals(require("rasrun.sshconfig").resolve("other", file).user, "nobody")
end

-- An Include inside a Host block applies only where that block does, as
-- ssh -G says; a Host line may mix quoted and plain patterns.
function TestSshConfig:test_an_include_in_a_host_block_and_mixed_patterns()
  local dir = H.tmpdir("sshcfg")
  assert(fs.write(dir .. "/work.conf", "User ras\nIdentityFile /keys/work_key\n"))
  assert(fs.write(dir .. "/config", table.concat({
    "Host work-*", "  Include " .. dir .. "/work.conf",
    'Host "quoted host" other', "  Port 2200",
    "Host *", "  User me", "" }, "\n")))
  local cfg = require "rasrun.sshconfig"
  lu.assertEquals(cfg.resolve("work-1", dir .. "/config").user, "ras")
  lu.assertEquals(cfg.resolve("work-1", dir .. "/config").identity_files, { "/keys/work_key" })
  local home = cfg.resolve("home-pc", dir .. "/config")
  lu.assertEquals({ home.user, #home.identity_files }, { "me", 0 })
  lu.assertEquals(cfg.resolve("other", dir .. "/config").port, 2200)
  lu.assertEquals(cfg.resolve("quoted host", dir .. "/config").port, 2200)
end

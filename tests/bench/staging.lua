-- SFTP staging over loopback to a local sshd, side by side with OpenSSH scp,
-- sftp and rsync -e ssh, in one run:
--   one 1 GiB file                 rasrun's pipelined SFTP put against the tools
--   a project tree of 2,000 files  rasrun's content-addressed staging against the tools
--   re-staging the unchanged tree  rasrun (manifest + hashes) against rsync's quick check
-- Every timing includes connecting, as the command-line tools do.
--   rasrun run tests/bench/staging.lua [MiB] [FILES]
local rasrun = require "rasrun"
local sys, fs, path = rasrun.sys, rasrun.fs, rasrun.path

local MIB = math.tointeger(tonumber(arg[1] or "1024"))
local NFILES = math.tointeger(tonumber(arg[2] or "2000"))
local root = assert(fs.tempdir("rasrun-bench-ssh"))
local port = 20000 + sys.pid() % 10000

local function sh(argv, opts)
  local r = assert(sys.run(argv, opts or { timeout = 3600 }))
  if r.code ~= 0 then error(table.concat(argv, " ") .. ": " .. r.stderr, 2) end
  return r
end

-- A local sshd on 127.0.0.1, root login with a fresh key.
local key, kh = root .. "/key", root .. "/known_hosts"
sh({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key })
sh({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", root .. "/hostkey" })
fs.write(root .. "/authorized_keys", assert(fs.read(key .. ".pub")))
fs.write(root .. "/sshd_config", table.concat({
  "ListenAddress 127.0.0.1", "Port " .. port, "HostKey " .. root .. "/hostkey",
  "PidFile " .. root .. "/sshd.pid", "AuthorizedKeysFile " .. root .. "/authorized_keys",
  "PermitRootLogin yes", "UsePAM no", "StrictModes no", "Subsystem sftp internal-sftp",
  "LogLevel ERROR", "" }, "\n"))
fs.mkdirs("/run/sshd")
local sshd = assert(sys.spawn({ "/usr/sbin/sshd", "-D", "-e", "-f", root .. "/sshd_config" },
  { stderr = root .. "/sshd.log" }))
local function cleanup()
  sys.kill(sshd, "KILL")
  sys.wait(sshd, 5)
  fs.rmtree(root)
end
local ok, err = pcall(function()
  local scan
  for _ = 1, 100 do
    scan = sys.run({ "ssh-keyscan", "-T", "1", "-p", tostring(port), "127.0.0.1" })
    if scan.code == 0 and scan.stdout ~= "" then break end
    sys.sleep(0.1)
  end
  fs.write(kh, scan.stdout)

  io.stderr:write(("making a %d MiB file and a tree of %d files in %s ...\n"):format(MIB, NFILES, root))
  local big = root .. "/big.bin"
  sh({ "dd", "if=/dev/urandom", "of=" .. big, "bs=1M", "count=" .. MIB, "status=none" })
  local tree = root .. "/tree"
  math.randomseed(1)
  local tree_bytes = 0
  for i = 1, NFILES do
    local dir = ("%s/d%02d"):format(tree, i % 20)
    fs.mkdirs(dir)
    local n = math.random(512, 16384)
    tree_bytes = tree_bytes + n
    local chunk = {}
    for k = 1, n // 64 + 1 do chunk[k] = ("%064x"):format(math.random(0, math.maxinteger)) end
    fs.write(("%s/f%04d.dat"):format(dir, i), table.concat(chunk):sub(1, n))
  end
  local remote = root .. "/remote"
  fs.mkdirs(remote)

  local ssh_opts = { "-i", key, "-o", "UserKnownHostsFile=" .. kh, "-o", "BatchMode=yes" }
  local function with(t, ...)
    local out = {}
    for _, v in ipairs(t) do out[#out + 1] = v end
    for _, v in ipairs({ ... }) do out[#out + 1] = v end
    return out
  end
  local target = { name = "bench", hostname = "127.0.0.1", port = port, user = "root",
                   identities = { key }, known_hosts = kh, connect_timeout = 10, io_timeout = 600 }
  local function timed(fn)
    local t0 = sys.monotonic()
    fn()
    return sys.monotonic() - t0
  end
  local function fresh(p) fs.rmtree(p) end

  -- 1. one big file
  local big_rows = {}
  local function big_case(name, fn, dest)
    fresh(dest)
    local secs = timed(fn)
    local st = assert(fs.stat(dest), name .. " left no file")
    assert(st.size == MIB * 2 ^ 20, name .. ": wrong size")
    big_rows[#big_rows + 1] = { name = name, secs = secs }
    io.stderr:write(("  %-24s %6.2f s\n"):format(name, secs))
  end
  big_case("rasrun SFTP", function()
    local c = assert(require("rasrun.ssh_c").connect(target))
    assert(c:put(big, remote .. "/big.rasrun"))
    c:close()
  end, remote .. "/big.rasrun")
  big_case("scp", function()
    sh(with({ "scp", "-q", "-P", tostring(port) }, table.unpack(with(ssh_opts, big, "root@127.0.0.1:" .. remote .. "/big.scp"))))
  end, remote .. "/big.scp")
  big_case("sftp", function()
    fs.write(root .. "/batch", ("put %s %s/big.sftp\n"):format(big, remote))
    sh(with({ "sftp", "-q", "-b", root .. "/batch", "-P", tostring(port) }, table.unpack(with(ssh_opts, "root@127.0.0.1"))))
  end, remote .. "/big.sftp")
  local rsh = ("ssh -p %d -i %s -o UserKnownHostsFile=%s -o BatchMode=yes"):format(port, key, kh)
  big_case("rsync -e ssh", function()
    sh({ "rsync", "-a", "-e", rsh, big, "root@127.0.0.1:" .. remote .. "/big.rsync" })
  end, remote .. "/big.rsync")

  -- 2. a project tree, first time
  local tree_rows = {}
  local function tree_case(name, fn)
    local secs = timed(fn)
    tree_rows[#tree_rows + 1] = { name = name, secs = secs }
    io.stderr:write(("  %-24s %6.2f s\n"):format(name, secs))
  end
  tree_case("rasrun staging", function()
    local c = assert(require("rasrun.ssh_c").connect(target))
    local r = assert(c:stage_tree(tree, remote .. "/tree.rasrun"))
    assert(r.files == NFILES)
    c:close()
  end)
  tree_case("scp -r", function()
    sh(with({ "scp", "-q", "-r", "-P", tostring(port) }, table.unpack(with(ssh_opts, tree, "root@127.0.0.1:" .. remote .. "/tree.scp"))))
  end)
  tree_case("sftp put -r", function()
    fs.write(root .. "/batch", ("put -r %s %s/tree.sftp\n"):format(tree, remote))
    sh(with({ "sftp", "-q", "-b", root .. "/batch", "-P", tostring(port) }, table.unpack(with(ssh_opts, "root@127.0.0.1"))))
  end)
  tree_case("rsync -e ssh", function()
    sh({ "rsync", "-a", "-e", rsh, tree .. "/", "root@127.0.0.1:" .. remote .. "/tree.rsync/" })
  end)

  -- 3. the same tree again, unchanged
  local again_rows = {}
  local sent_again
  local function again_case(name, fn)
    local secs = timed(fn)
    again_rows[#again_rows + 1] = { name = name, secs = secs }
    io.stderr:write(("  %-24s %6.2f s\n"):format(name, secs))
  end
  again_case("rasrun re-stage", function()
    local c = assert(require("rasrun.ssh_c").connect(target))
    local r = assert(c:stage_tree(tree, remote .. "/tree.rasrun"))
    sent_again = r.bytes
    c:close()
  end)
  again_case("rsync -e ssh", function()
    sh({ "rsync", "-a", "-e", rsh, tree .. "/", "root@127.0.0.1:" .. remote .. "/tree.rsync/" })
  end)

  local function report(title, rows, bytes)
    print(title)
    print(("  %-24s %9s %10s %12s"):format("", "seconds", "MB/s", "rasrun/this"))
    for _, r in ipairs(rows) do
      print(("  %-24s %9.2f %10.1f %11.2fx"):format(r.name, r.secs, bytes / 1e6 / r.secs, rows[1].secs / r.secs))
    end
  end
  print()
  report(("one %d MiB file, over loopback"):format(MIB), big_rows, MIB * 2 ^ 20)
  report(("a project tree of %d files (%.1f MB), first time"):format(NFILES, tree_bytes / 1e6), tree_rows, tree_bytes)
  report("the same tree again, unchanged", again_rows, tree_bytes)
  print(("  rasrun sent %d file bytes on the re-stage"):format(sent_again))
  local function by(rows, name) for _, r in ipairs(rows) do if r.name == name then return r.secs end end end
  local r1 = big_rows[1].secs / by(big_rows, "scp")
  local r2 = again_rows[1].secs / by(again_rows, "rsync -e ssh")
  print(("targets: big file vs scp %.2fx %s (at least as fast: <= 1.0); unchanged re-stage vs rsync %.2fx %s (faster: < 1.0)")
    :format(r1, r1 <= 1.0 and "ok" or "MISSED", r2, r2 < 1.0 and "ok" or "MISSED"))
end)
cleanup()
if not ok then error(err, 0) end

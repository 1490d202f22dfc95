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
  local big_file = root .. "/big.bin"
  sh({ "dd", "if=/dev/urandom", "of=" .. big_file, "bs=1M", "count=" .. MIB, "status=none" })
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
  -- Each case runs ROUNDS times, in forward then reverse order, after a sync
  -- (untimed) so that no contender pays for another's dirty pages; the best
  -- time counts.
  local ROUNDS = math.tointeger(tonumber(os.getenv("BENCH_ROUNDS") or "2"))
  local function measure(title, cases)
    local best = {}
    for round = 1, ROUNDS do
      local first, last, step = 1, #cases, 1
      if round % 2 == 0 then first, last, step = #cases, 1, -1 end
      for i = first, last, step do
        local c = cases[i]
        if c.reset then c.reset() end
        sys.run({ "sync" }, { timeout = 600 })
        local t0 = sys.monotonic()
        c.fn()
        local secs = sys.monotonic() - t0
        if c.verify then c.verify() end
        io.stderr:write(("  %s, round %d: %-22s %6.2f s\n"):format(title, round, c.name, secs))
        best[i] = math.min(best[i] or math.huge, secs)
      end
    end
    local rows = {}
    for i, c in ipairs(cases) do rows[i] = { name = c.name, secs = best[i] } end
    return rows
  end

  local rsh = ("ssh -p %d -i %s -o UserKnownHostsFile=%s -o BatchMode=yes"):format(port, key, kh)
  local function ssh_tool(argv) return function() sh(argv) end end
  local function sftp_batch(cmd) return function()
    fs.write(root .. "/batch", cmd .. "\n")
    sh(with({ "sftp", "-q", "-b", root .. "/batch", "-P", tostring(port) }, table.unpack(with(ssh_opts, "root@127.0.0.1"))))
  end end

  -- 1. one big file
  local function big(name, dest, fn)
    return { name = name, fn = fn, reset = function() fs.remove(dest) end,
             verify = function() assert((fs.stat(dest) or {}).size == MIB * 2 ^ 20, name .. ": wrong size") end }
  end
  local big_rows = measure("big file", {
    big("rasrun SFTP", remote .. "/big.rasrun", function()
      local c = assert(require("rasrun.ssh_c").connect(target))
      assert(c:put(big_file, remote .. "/big.rasrun"))
      c:close()
    end),
    big("scp", remote .. "/big.scp", ssh_tool(with({ "scp", "-q", "-P", tostring(port) },
      table.unpack(with(ssh_opts, big_file, "root@127.0.0.1:" .. remote .. "/big.scp"))))),
    big("sftp", remote .. "/big.sftp", sftp_batch(("put %s %s/big.sftp"):format(big_file, remote))),
    big("rsync -e ssh", remote .. "/big.rsync", ssh_tool({ "rsync", "-a", "-e", rsh, big_file,
      "root@127.0.0.1:" .. remote .. "/big.rsync" })),
  })
  for _, n in ipairs({ "rasrun", "scp", "sftp", "rsync" }) do fs.remove(remote .. "/big." .. n) end

  -- 2. a project tree, first time
  local function tree_case(name, dest, fn)
    return { name = name, fn = fn, reset = function() fs.rmtree(dest) end }
  end
  local tree_rows = measure("tree", {
    tree_case("rasrun staging", remote .. "/tree.rasrun", function()
      local c = assert(require("rasrun.ssh_c").connect(target))
      assert(assert(c:stage_tree(tree, remote .. "/tree.rasrun")).files == NFILES)
      c:close()
    end),
    tree_case("scp -r", remote .. "/tree.scp", ssh_tool(with({ "scp", "-q", "-r", "-P", tostring(port) },
      table.unpack(with(ssh_opts, tree, "root@127.0.0.1:" .. remote .. "/tree.scp"))))),
    tree_case("sftp put -r", remote .. "/tree.sftp", sftp_batch(("put -r %s %s/tree.sftp"):format(tree, remote))),
    tree_case("rsync -e ssh", remote .. "/tree.rsync", ssh_tool({ "rsync", "-a", "-e", rsh, tree .. "/",
      "root@127.0.0.1:" .. remote .. "/tree.rsync/" })),
  })

  -- 3. the same tree again, unchanged (both staged once more, untimed, first)
  local sent_again
  local again_rows = measure("unchanged tree", {
    { name = "rasrun re-stage", fn = function()
      local c = assert(require("rasrun.ssh_c").connect(target))
      sent_again = assert(c:stage_tree(tree, remote .. "/tree.rasrun")).bytes
      c:close()
    end },
    { name = "rsync -e ssh", fn = ssh_tool({ "rsync", "-a", "-e", rsh, tree .. "/",
      "root@127.0.0.1:" .. remote .. "/tree.rsync/" }) },
  })

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

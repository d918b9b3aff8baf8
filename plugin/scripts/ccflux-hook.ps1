# ccflux hook wrapper for native Windows (Windows PowerShell 5.1 and PowerShell 7), used by
# hooks/hooks-windows.json. Same contract as ccflux-hook.sh:
#
# Claude Code waits for this script, so it only saves the hook JSON from stdin to a private temp
# file (byte for byte, in the user's own %TEMP%), starts ccflux in the background -- the platform
# binary, else node 20+ with dist/ccflux.cjs -- hidden, with no window and no inherited handles
# (Start-Process goes through ShellExecute, so Claude Code's pipes are not held open), and exits 0
# at once, printing nothing. The hook JSON never goes on a command line. With neither runner, it
# logs why to <data_dir>\ccflux\errors.log and does nothing.
#
# When the platform binary is missing it also starts itself hidden as `ccflux-hook.ps1
# fetch-binary`, which downloads the binary over https (curl.exe, or ccflux itself when node is
# there), checks its SHA-256 against bin\SHA256SUMS and only then moves it into place.
param([string]$Command = '')

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ReleaseRepo = 'ccflux/ccflux'
$RetryAfterMinutes = 60
$StaleLockMinutes = 30
$HookCommands = @('init', 'report-turn', 'session-end')

function Write-CcfluxLog([string]$Level, [string]$Message) {
  try {
    $base = $env:CLAUDE_CONFIG_DIR
    if (-not $base) { $base = Join-Path ([Environment]::GetFolderPath('UserProfile')) '.claude' }
    $dir = Join-Path $base 'ccflux'
    if (-not (Test-Path -LiteralPath $dir -PathType Container)) { return }
    $line = '{0} ccflux-hook.ps1: {1}{2}' -f [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ'), $Message, "`n"
    if ($Level -eq 'error') { [IO.File]::AppendAllText((Join-Path $dir 'errors.log'), $line) }
    if ($Level -ne 'error' -or $Command -eq 'fetch-binary') { [IO.File]::AppendAllText((Join-Path $dir 'activity.log'), $line) }
  } catch {
    # A log that cannot be written must not disturb Claude Code.
  }
}

function Get-PluginRoot {
  if ($env:CLAUDE_PLUGIN_ROOT) { return $env:CLAUDE_PLUGIN_ROOT }
  return (Split-Path -Parent $PSScriptRoot)
}

# Node's names: x64 or arm64 (a 32-bit PowerShell on a 64-bit Windows sees the real one in ARCHITEW6432).
function Get-Arch {
  $a = $env:PROCESSOR_ARCHITEW6432
  if (-not $a) { $a = $env:PROCESSOR_ARCHITECTURE }
  switch ($a) {
    'AMD64' { return 'x64' }
    'ARM64' { return 'arm64' }
    default { return 'unknown' }
  }
}

# Runs a program and returns its exit code and output. With 'Stop', Windows PowerShell 5.1 turns
# a native program's stderr into a terminating error, so it is relaxed for the call.
function Invoke-Native([string]$File, [string[]]$Arguments) {
  $previous = $ErrorActionPreference
  $ErrorActionPreference = 'Continue'
  try {
    $output = @(& $File @Arguments 2>&1 | ForEach-Object { "$_" })
    return @{ Code = $LASTEXITCODE; Output = $output }
  } finally {
    $ErrorActionPreference = $previous
  }
}

function Get-NodeMajor($node) {
  # node.exe carries its version in its file version info: no need to start it.
  try { if ($node.Version -and $node.Version.Major -gt 0) { return $node.Version.Major } } catch { }
  try {
    $result = Invoke-Native $node.Source @('--version')
    if ("$($result.Output)" -match '^v(\d+)\.') { return [int]$Matches[1] }
  } catch { }
  return 0
}

function Get-Node {
  $node = Get-Command node -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
  if ($node -and (Get-NodeMajor $node) -ge 20) { return $node }
  return $null
}

function ConvertTo-ArgumentLine([string[]]$Arguments) {
  # Windows paths cannot contain '"', and none of these ends in '\', so plain quoting is exact.
  return (($Arguments | ForEach-Object { '"' + $_ + '"' }) -join ' ')
}

# Whether a background download should start: not after a recent failure, not while one runs.
# Checked here so a hook does not start a PowerShell for nothing on every turn.
function Test-FetchDue([string]$Bin) {
  # No checksums at all: a development folder, not a release; nothing to verify a download against.
  if (-not (Test-Path -LiteralPath (Join-Path $Bin 'SHA256SUMS') -PathType Leaf)) { return $false }
  $failed = Join-Path $Bin '.fetch-failed'
  if ((Test-Path -LiteralPath $failed) -and (Get-Item -LiteralPath $failed).LastWriteTimeUtc -gt [DateTime]::UtcNow.AddMinutes(-$RetryAfterMinutes)) { return $false }
  $lock = Join-Path $Bin '.fetch.lock'
  if ((Test-Path -LiteralPath $lock) -and (Get-Item -LiteralPath $lock).LastWriteTimeUtc -gt [DateTime]::UtcNow.AddMinutes(-$StaleLockMinutes)) { return $false }
  return $true
}

# A release's binary runs only while it matches bin\SHA256SUMS (issue 16): hashed once per size and
# modification time (remembered in <data dir>\ccflux\.binary-verified), not on every turn.
# No SHA256SUMS (a development folder): nothing to check against.
function Test-BinaryVerified([string]$Binary) {
  $sums = Join-Path (Split-Path -Parent $Binary) 'SHA256SUMS'
  if (-not (Test-Path -LiteralPath $sums -PathType Leaf)) { return $true }
  try {
    $name = Split-Path -Leaf $Binary
    $expected = $null
    foreach ($l in [IO.File]::ReadAllLines($sums)) {
      $parts = $l.Trim() -split '\s+', 2
      if ($parts.Count -eq 2 -and ($parts[1] -eq $name -or $parts[1] -eq "*$name") -and $parts[0] -cmatch '^[0-9a-f]{64}$') { $expected = $parts[0]; break }
    }
    if (-not $expected) { Write-CcfluxLog 'error' "no checksum for $name in $sums; not running it"; return $false }
    $item = Get-Item -LiteralPath $Binary
    $stamp = '{0} {1} {2}' -f $expected, $item.Length, $item.LastWriteTimeUtc.Ticks
    $base = $env:CLAUDE_CONFIG_DIR
    if (-not $base) { $base = Join-Path ([Environment]::GetFolderPath('UserProfile')) '.claude' }
    $cache = Join-Path (Join-Path $base 'ccflux') '.binary-verified'
    if ((Test-Path -LiteralPath $cache -PathType Leaf) -and ([IO.File]::ReadAllText($cache).Trim() -eq $stamp)) { return $true }
    $actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $Binary).Hash.ToLowerInvariant()
    if ($actual -ne $expected) { Write-CcfluxLog 'error' "$Binary does not match $sums; not running it"; return $false }
    if (Test-Path -LiteralPath (Split-Path -Parent $cache) -PathType Container) { [IO.File]::WriteAllText($cache, $stamp) }
    return $true
  } catch {
    Write-CcfluxLog 'error' "cannot verify $Binary against $sums; not running it"
    return $false
  }
}

function Invoke-Hook {
  $stdin = [Console]::OpenStandardInput()
  if ($HookCommands -notcontains $Command) {
    $stdin.CopyTo([IO.Stream]::Null)
    return
  }
  $root = Get-PluginRoot
  $spool = Join-Path ([IO.Path]::GetTempPath()) ('ccflux-hook.' + [Guid]::NewGuid().ToString('N'))
  $file = [IO.File]::Open($spool, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None)
  try { $stdin.CopyTo($file) } finally { $file.Dispose() }

  $arch = Get-Arch
  $binary = Join-Path $root "bin\ccflux-win32-$arch.exe"
  $bundle = Join-Path $root 'dist\ccflux.cjs'
  $code = Join-Path $root 'dist\ccflux.body.cjs'
  $hasBinary = ($arch -ne 'unknown') -and (Test-Path -LiteralPath $binary -PathType Leaf)
  if (-not $hasBinary -and $arch -ne 'unknown' -and (Test-FetchDue (Join-Path $root 'bin'))) {
    # In the background: this hook never waits for the download; the binary is used from the next run.
    $self = (Get-Process -Id $PID).Path
    $line = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File ' + (ConvertTo-ArgumentLine @($PSCommandPath, 'fetch-binary'))
    Start-Process -FilePath $self -ArgumentList $line -WindowStyle Hidden | Out-Null
  }

  $runner = $null
  $runnerArgs = @()
  if ($hasBinary -and (Test-BinaryVerified $binary)) {
    $runner = $binary
  } else {
    $node = Get-Node
    if ($node -and (Test-Path -LiteralPath $bundle -PathType Leaf)) {
      if (-not (Test-Path -LiteralPath $code -PathType Leaf)) {
        # The loader without its code would fail where no one sees it (the worker has no window).
        Remove-Item -LiteralPath $spool -Force -ErrorAction SilentlyContinue
        Write-CcfluxLog 'error' "$code is missing: the plugin is incomplete; nothing reported (reinstall the plugin)"
        return
      }
      $runner = $node.Source
      $runnerArgs = @($bundle)
    }
  }
  if (-not $runner) {
    Remove-Item -LiteralPath $spool -Force -ErrorAction SilentlyContinue
    Write-CcfluxLog 'error' "no ccflux binary for win32-$arch and no node 20+ in PATH; nothing reported (install Node.js 20+ or the platform binary)"
    return
  }

  # NODE_EXTRA_CA_CERTS makes every Node start ~90 ms slower; ccflux loads that file itself, and
  # only when it sends.
  if ($env:NODE_EXTRA_CA_CERTS) {
    $env:CCFLUX_EXTRA_CA_CERTS = $env:NODE_EXTRA_CA_CERTS
    Remove-Item Env:NODE_EXTRA_CA_CERTS
  }
  $line = ConvertTo-ArgumentLine (@($runnerArgs) + @($Command, '--input-file', $spool, '--foreground'))
  Start-Process -FilePath $runner -ArgumentList $line -WindowStyle Hidden | Out-Null
}

function Invoke-Fetch {
  $root = Get-PluginRoot
  $arch = Get-Arch
  if ($arch -eq 'unknown') { return }
  $name = "ccflux-win32-$arch.exe"
  $bin = Join-Path $root 'bin'
  $target = Join-Path $bin $name
  if (Test-Path -LiteralPath $target) { return }

  if (-not (Test-FetchDue $bin)) { return }
  $failed = Join-Path $bin '.fetch-failed'
  $lock = Join-Path $bin '.fetch.lock'
  try {
    New-Item -ItemType Directory -Path $lock | Out-Null
  } catch {
    if (-not (Test-Path -LiteralPath $lock)) { return }
    if ((Get-Item -LiteralPath $lock).LastWriteTimeUtc -gt [DateTime]::UtcNow.AddMinutes(-$StaleLockMinutes)) { return }
    Remove-Item -LiteralPath $lock -Recurse -Force
    New-Item -ItemType Directory -Path $lock | Out-Null
  }
  $tmp = Join-Path $bin ".$name.download.$PID"
  try {
    $expected = $null
    $sums = Join-Path $bin 'SHA256SUMS'
    if (Test-Path -LiteralPath $sums) {
      foreach ($entry in [IO.File]::ReadAllLines($sums)) {
        if ($entry -match '^([0-9a-fA-F]{64}) [ *](.+)$' -and $Matches[2].Trim() -eq $name) { $expected = $Matches[1].ToLowerInvariant(); break }
      }
    }
    if (-not $expected) { throw "no checksum for $name in $sums; not downloading it (install Node.js 20+ or put the binary there by hand)" }

    $node = Get-Node
    $bundle = Join-Path $root 'dist\ccflux.cjs'
    if ($node -and (Test-Path -LiteralPath $bundle -PathType Leaf)) {
      # ccflux verifies and installs the binary itself, with the same rules.
      $result = Invoke-Native $node.Source @($bundle, 'fetch-binary', '--plugin-root', $root)
      if ($result.Code -ne 0) { [IO.File]::WriteAllText($failed, '') }
      return
    }

    $version = (Get-Content -Raw -LiteralPath (Join-Path $root '.claude-plugin\plugin.json') | ConvertFrom-Json).version
    if ($version -notmatch '^[0-9A-Za-z.+-]+$') { throw "no version in the plugin manifest; not downloading $name" }
    $base = $env:CCFLUX_RELEASE_BASE_URL
    if (-not $base) { $base = "https://github.com/$ReleaseRepo/releases/download/v$version" }
    if ($base -notmatch '^https://') { throw "refusing to download $name over a non-https URL ($base)" }
    $url = $base.TrimEnd('/') + '/' + $name

    $curl = Get-Command curl.exe -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $curl) { throw "cannot download ${name}: neither curl.exe nor node 20+ is available" }
    $curlArgs = @('--proto', '=https', '--proto-redir', '=https', '--fail', '--silent', '--show-error', '--location', '--max-redirs', '5',
      '--connect-timeout', '20', '--max-time', '900', '--output', $tmp)
    if ($env:CCFLUX_CA_CERT) { $curlArgs += @('--cacert', $env:CCFLUX_CA_CERT) }
    $result = Invoke-Native $curl.Source ($curlArgs + @($url))
    if ($result.Code -ne 0) { throw "download of $url failed: $($result.Output | Select-Object -First 1)" }

    $actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $tmp).Hash.ToLowerInvariant()
    if ($actual -ne $expected) { throw "checksum mismatch for $name from ${url}: expected $expected, got $actual; file discarded" }
    Move-Item -LiteralPath $tmp -Destination $target -Force
    Remove-Item -LiteralPath $failed -Force -ErrorAction SilentlyContinue
    Write-CcfluxLog 'info' "downloaded $name $version from $url (sha256 $expected verified)"
  } catch {
    Write-CcfluxLog 'error' "$($_.Exception.Message)"
    try { [IO.File]::WriteAllText($failed, '') } catch { }
  } finally {
    Remove-Item -LiteralPath $tmp -Force -ErrorAction SilentlyContinue
    Remove-Item -LiteralPath $lock -Recurse -Force -ErrorAction SilentlyContinue
  }
}

try {
  if ($Command -eq 'fetch-binary') { Invoke-Fetch } else { Invoke-Hook }
} catch {
  Write-CcfluxLog 'error' "hook skipped: $($_.Exception.Message)"
}
exit 0

-- wrk script for tokenmint's benchmark (see bench/README.md).
--   wrk ... -s load.lua URL            GET the URL (the /healthz baseline)
--   wrk ... -s load.lua URL -- FILE    POST /token, cycling over the lines
--                                      of FILE: an Authorization header, or
--                                      "body:" and a whole form body (client
--                                      assertions, one line per request), or
--                                      "dpop:" an Authorization header, a tab
--                                      and a DPoP proof (one line per request)
-- It ends with one machine-readable line: "RESULT requests seconds
-- non2xx socket_errors p50_us p99_us max_us".

local headers = {}
local n = 0

function init(args)
  if args[1] then
    for line in io.lines(args[1]) do
      headers[#headers + 1] = line
    end
  end
end

function request()
  if #headers == 0 then
    return wrk.format("GET")
  end
  n = n + 1
  local line = headers[(n % #headers) + 1]
  if line:sub(1, 5) == "body:" then
    return wrk.format("POST", "/token", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, line:sub(6))
  end
  if line:sub(1, 5) == "dpop:" then
    local tab = line:find("\t", 6, true)
    return wrk.format("POST", "/token", {
      ["Authorization"] = line:sub(6, tab - 1),
      ["DPoP"] = line:sub(tab + 1),
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, "grant_type=client_credentials")
  end
  return wrk.format("POST", "/token", {
    ["Authorization"] = line,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "grant_type=client_credentials")
end

-- `done`, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "result.lua")

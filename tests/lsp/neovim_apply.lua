-- Neovim as an LSP client of `neural-coder lsp`: open NC_FILE, ask the server for its code
-- actions, apply the one for NC_APPROACH (resolving its edit first), write the buffer.
-- Run: NC_SERVER=... NC_FILE=... NC_APPROACH=... nvim --headless --clean -c "luafile neovim_apply.lua"
local function fail(message)
  io.stderr:write("neovim_apply: " .. message .. "\n")
  vim.cmd("cquit 1")
end

local ok, err = pcall(function()
  local file, approach = os.getenv("NC_FILE"), os.getenv("NC_APPROACH")
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  local config = {
    name = "neural-coder",
    cmd = { os.getenv("NC_SERVER"), "lsp" },
    root_dir = vim.fn.fnamemodify(file, ":h"),
  }
  local id
  if vim.lsp.start then -- Neovim >= 0.8
    id = vim.lsp.start(config)
  else -- Debian bookworm's 0.7: the same, in two calls
    id = vim.lsp.start_client(config)
    vim.lsp.buf_attach_client(buf, id)
  end
  local client = vim.lsp.get_client_by_id(id)
  if not vim.wait(60000, function()
    return client.server_capabilities ~= nil and client.server_capabilities.codeActionProvider ~= nil
  end, 50) then
    return fail("the server did not initialize")
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } },
    context = { diagnostics = {}, only = { "source" } },
  }
  local answer = client.request_sync("textDocument/codeAction", params, 60000, buf)
  if not answer or answer.err then
    return fail("codeAction failed: " .. vim.inspect(answer))
  end
  local chosen
  for _, action in ipairs(answer.result or {}) do
    if action.data and action.data.approach == approach and not action.disabled then
      chosen = action
    end
  end
  if not chosen then
    return fail("no enabled action for " .. approach .. ": " .. vim.inspect(answer.result))
  end
  if not chosen.edit then
    local resolved = client.request_sync("codeAction/resolve", chosen, 60000, buf)
    if not resolved or resolved.err then
      return fail("codeAction/resolve failed: " .. vim.inspect(resolved))
    end
    chosen = resolved.result
  end
  vim.lsp.util.apply_workspace_edit(chosen.edit, client.offset_encoding or "utf-16")
  vim.cmd("write")
  client.stop()
  vim.wait(5000, function() return client.is_stopped() end, 50)
  io.stdout:write("applied " .. chosen.title .. "\n")
end)
if not ok then
  fail(tostring(err))
else
  vim.cmd("qall!")
end

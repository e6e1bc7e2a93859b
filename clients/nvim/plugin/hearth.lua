-- plugin/hearth.lua owns the user commands: :HearthIndex [dir], :HearthStatus,
-- :HearthAttach and :HearthDetach. It does not call setup() (attaching buffers is opt-in
-- through require("hearth").setup{}); the commands work with the defaults without it.

if vim.g.loaded_hearth then
  return
end
vim.g.loaded_hearth = true

local cmd = vim.api.nvim_create_user_command

cmd("HearthIndex", function(opts)
  require("hearth").index(opts.args)
end, { nargs = "?", complete = "dir", desc = "hearth: index a folder (default: the current directory)" })

cmd("HearthStatus", function()
  require("hearth").status()
end, { desc = "hearth: the daemon's $/hello and $/stats" })

cmd("HearthAttach", function()
  require("hearth").attach(0)
end, { desc = "hearth: mirror the current buffer to hearthd" })

cmd("HearthDetach", function()
  require("hearth").detach(0)
end, { desc = "hearth: stop mirroring the current buffer" })

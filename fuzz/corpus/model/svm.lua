-- The notes' linear SVM: scores f = W x for each example, the multiclass
-- hinge loss max(0, s_j - s_yi + 1) summed over j != y_i, averaged over
-- the batch, plus L2 regularization of W.
local N = config.batch or 64
local D, C = config.features or 64, config.classes or 10
local reg = config.reg or 1e-3

local x      = input("x", {N, D})
local labels = input("labels", {N}, "int32")
local W      = param("W", {C, D}, randn(0.01))

local scores = x:matmul(W:t())
local data_loss = mean(hinge_loss(scores, labels))
local reg_loss = reg * sum(W^2)

return model {
  loss = data_loss + reg_loss,
  outputs = { scores = scores },
  optimizer = sgd { lr = 1e-2 },
}

-- The benchmark's MNIST-sized MLP: batch 128, 784-512-512-10, ReLU,
-- biases, softmax cross-entropy (the batch's mean), plain SGD. The same
-- network is written in NumPy and PyTorch in bench/ref_numpy.py and
-- bench/ref_torch.py.
local dense = import("dense")

local N = config.batch or 128

local x      = input("x", {N, 784})
local labels = input("labels", {N}, "int32")

local h1 = relu(dense(x, 512, "fc1"))
local h2 = relu(dense(h1, 512, "fc2"))
local logits = dense(h2, 10, "fc3")

return model {
  loss = mean(cross_entropy(logits, labels)),
  outputs = { logits = logits },
  optimizer = sgd { lr = 0.01 },
}

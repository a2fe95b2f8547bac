/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Distributed.h"

#include <torch/torch.h>

#if defined(AGCL_WITH_C10D)
#  include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#  include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#  include <torch/csrc/distributed/c10d/TCPStore.hpp>
#  if defined(AGCL_WITH_NCCL)
#    include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#  endif
#endif

#include <chrono>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace agcl {

bool
DistributedAvailable()
{
#if defined(AGCL_WITH_C10D)
  return true;
#else
  return false;
#endif
}

bool
DistributedNcclAvailable()
{
#if defined(AGCL_WITH_C10D) && defined(AGCL_WITH_NCCL)
  return true;
#else
  return false;
#endif
}

namespace {

/** `text` as an integer in [low, high], or std::invalid_argument naming the variable. */
int
ParseVariable(const std::string & name, const std::string & text, long low, long high, const std::string & expected)
{
  const auto fail = [&]() {
    throw std::invalid_argument("environment variable " + name + "='" + text + "': expected " + expected);
  };
  if (text.empty() || text.size() > 18)
    fail();
  size_t start = text[0] == '-' || text[0] == '+' ? 1 : 0;
  if (start == text.size())
    fail();
  for (size_t i = start; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9')
      fail();
  const long value = std::stol(text);
  if (value < low || value > high)
    fail();
  return static_cast<int>(value);
}

std::optional<std::string>
ProcessEnvironment(const std::string & name)
{
  const char * value = std::getenv(name.c_str());
  return value ? std::optional<std::string>(value) : std::nullopt;
}

std::string
SecondsText(std::chrono::milliseconds time)
{
  std::ostringstream text;
  text << static_cast<double>(time.count()) / 1000.0 << " s";
  return text.str();
}

/** An error's message without LibTorch's stack trace. */
std::string
ErrorText(const std::exception & error)
{
  if (const auto * c10Error = dynamic_cast<const c10::Error *>(&error))
    return c10Error->what_without_backtrace();
  return error.what();
}

} // namespace

std::optional<DistributedEnvironment>
ReadDistributedEnvironment(const std::function<std::optional<std::string>(const std::string &)> & lookup)
{
  const auto get = [&](const std::string & name) { return lookup ? lookup(name) : ProcessEnvironment(name); };
  const auto rankText = get("RANK");
  const auto worldText = get("WORLD_SIZE");
  if (!rankText && !worldText)
    return std::nullopt;
  if (!rankText || !worldText)
    throw std::invalid_argument(std::string("environment variable ") + (rankText ? "WORLD_SIZE" : "RANK") +
                                " is not set but " + (rankText ? "RANK" : "WORLD_SIZE") +
                                " is: a distributed run needs both (as torchrun sets them)");
  DistributedEnvironment e;
  e.worldSize = ParseVariable("WORLD_SIZE", *worldText, 1, 1 << 20, "the number of processes, an integer >= 1");
  e.rank = ParseVariable(
    "RANK", *rankText, 0, e.worldSize - 1, "an integer in 0.." + std::to_string(e.worldSize - 1) + " (< WORLD_SIZE)");
  const auto localWorldText = get("LOCAL_WORLD_SIZE");
  e.localWorldSize =
    localWorldText
      ? ParseVariable("LOCAL_WORLD_SIZE",
                      *localWorldText,
                      1,
                      e.worldSize,
                      "the processes on this machine, 1.." + std::to_string(e.worldSize) + " (<= WORLD_SIZE)")
      : e.worldSize;
  const auto localRankText = get("LOCAL_RANK");
  if (localRankText)
    e.localRank = ParseVariable("LOCAL_RANK",
                                *localRankText,
                                0,
                                e.localWorldSize - 1,
                                "an integer in 0.." + std::to_string(e.localWorldSize - 1) + " (< LOCAL_WORLD_SIZE)");
  else
  {
    if (localWorldText && e.localWorldSize != e.worldSize)
      throw std::invalid_argument("environment variable LOCAL_RANK is not set but LOCAL_WORLD_SIZE=" + *localWorldText +
                                  " (< WORLD_SIZE): expected LOCAL_RANK with it");
    e.localRank = e.rank;
  }
  const auto agent = get("TORCHELASTIC_USE_AGENT_STORE");
  if (agent)
  {
    if (*agent == "True" || *agent == "true" || *agent == "1")
      e.agentStore = true;
    else if (*agent == "False" || *agent == "false" || *agent == "0" || agent->empty())
      e.agentStore = false;
    else
      throw std::invalid_argument("environment variable TORCHELASTIC_USE_AGENT_STORE='" + *agent +
                                  "': expected True or False");
  }
  const auto address = get("MASTER_ADDR");
  const auto port = get("MASTER_PORT");
  if (e.worldSize > 1 || address || port)
  {
    if (!address || address->empty())
      throw std::invalid_argument("environment variable MASTER_ADDR is not set: expected the host name or address of "
                                  "rank 0's machine (WORLD_SIZE=" +
                                  std::to_string(e.worldSize) + ")");
    if (!port)
      throw std::invalid_argument("environment variable MASTER_PORT is not set: expected a free TCP port 1..65535 on " +
                                  *address);
    e.masterAddress = *address;
    e.masterPort = ParseVariable("MASTER_PORT", *port, 1, 65535, "a TCP port 1..65535");
  }
  return e;
}

int
ThreadsPerRank(int cores, int localWorldSize)
{
  return std::max(1, std::max(cores, 1) / std::max(localWorldSize, 1));
}

struct DistributedGroup::Impl
{
  DistributedEnvironment environment;
  DistributedOptions     options;
  Traffic                traffic;
#if defined(AGCL_WITH_C10D)
  c10::intrusive_ptr<c10d::Store>        store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
#endif

  /** NCCL reduces device tensors only: a host tensor is staged through the rank's GPU. */
  bool
  NeedsDevice(const torch::Tensor & t) const
  {
    return options.backend == "nccl" && !t.is_cuda();
  }
  /** NCCL: the rank's GPU, cuda:LOCAL_RANK (one GPU per rank of a machine). */
  torch::Device
  CollectiveDevice() const
  {
    return options.backend == "nccl" ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(environment.localRank))
                                     : torch::Device(torch::kCPU);
  }

  /** Runs one collective; c10d's and Gloo's errors become std::runtime_error naming the rank. */
  template <typename F>
  void
  Run(const char * operation, double bytes, double Traffic::*bytesField, double Traffic::*secondsField, F && f)
  {
    const auto start = std::chrono::steady_clock::now();
    try
    {
      f();
    }
    catch (const std::exception & error)
    {
      throw std::runtime_error("distributed " + std::string(operation) + " failed on rank " +
                               std::to_string(environment.rank) + " of " + std::to_string(environment.worldSize) +
                               " (a peer gone, or not there within the timeout of " + SecondsText(options.timeout) +
                               "?): " + ErrorText(error));
    }
    traffic.*bytesField += bytes;
    traffic.*secondsField += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

DistributedGroup::DistributedGroup(std::unique_ptr<Impl> impl)
  : m_Impl(std::move(impl))
{}

DistributedGroup::~DistributedGroup() = default;

std::shared_ptr<DistributedGroup>
DistributedGroup::Connect(const DistributedEnvironment & environment, const DistributedOptions & options)
{
  auto impl = std::make_unique<Impl>();
  impl->environment = environment;
  impl->options = options;
  if (impl->options.backend.empty())
    impl->options.backend = "gloo";
  const std::string & backend = impl->options.backend;
  if (backend != "gloo" && backend != "nccl")
    throw std::invalid_argument("distributed backend '" + backend + "': expected gloo or nccl");
  if (options.timeout.count() <= 0)
    throw std::invalid_argument("distributed timeout " + std::to_string(options.timeout.count()) +
                                " ms: expected a positive time");
  if (options.bucketBytes == 0)
    throw std::invalid_argument("distributed gradient bucket of 0 bytes: expected a positive size");
  if (environment.worldSize < 1 || environment.rank < 0 || environment.rank >= environment.worldSize)
    throw std::invalid_argument("distributed rank " + std::to_string(environment.rank) + " of " +
                                std::to_string(environment.worldSize) + ": expected 0 <= rank < world size");
  if (environment.worldSize == 1)
    return std::shared_ptr<DistributedGroup>(new DistributedGroup(std::move(impl))); // no communication
#if !defined(AGCL_WITH_C10D)
  throw std::runtime_error("this build of AGCL has no distributed support (its LibTorch lacked the c10d/Gloo headers, "
                           "or it was configured with -DAGCL_DISTRIBUTED=OFF); WORLD_SIZE=" +
                           std::to_string(environment.worldSize) + " cannot be run");
#else
  if (backend == "nccl" && !DistributedNcclAvailable())
    throw std::invalid_argument("distributed backend 'nccl': this build's LibTorch has no NCCL (use gloo)");
  const std::string where = "rank " + std::to_string(environment.rank) + " of " +
                            std::to_string(environment.worldSize) + ": rendezvous at " + environment.masterAddress +
                            ":" + std::to_string(environment.masterPort);
  try
  {
    c10d::TCPStoreOptions storeOptions;
    storeOptions.port = static_cast<std::uint16_t>(environment.masterPort);
    storeOptions.isServer = environment.rank == 0 && !environment.agentStore;
    storeOptions.numWorkers = static_cast<std::size_t>(environment.worldSize);
    storeOptions.waitWorkers = false; // the process group's rendezvous waits for everybody
    storeOptions.timeout = options.timeout;
    c10::intrusive_ptr<c10d::Store> store =
      c10::make_intrusive<c10d::TCPStore>(environment.masterAddress, storeOptions);
    // Under torchrun's agent store, keys of this attempt only (a restarted job starts afresh).
    std::string prefix = "agcl";
    if (environment.agentStore)
    {
      const auto attempt = ProcessEnvironment("TORCHELASTIC_RESTART_COUNT");
      prefix = "/worker/attempt_" + attempt.value_or("0") + "/agcl";
    }
    impl->store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
    impl->store->setTimeout(options.timeout);
    if (backend == "gloo")
    {
      auto glooOptions = c10d::ProcessGroupGloo::Options::create(options.timeout);
      // GLOO_SOCKET_IFNAME (PyTorch's variable) picks the interface; a loopback master means
      // a job on this machine: bind to the loopback address only.
      const auto          interface = ProcessEnvironment("GLOO_SOCKET_IFNAME");
      const std::string & host = environment.masterAddress;
      const bool          loopback = host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
      if (interface && !interface->empty())
        glooOptions->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*interface));
      else if (loopback)
        glooOptions->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        glooOptions->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      glooOptions->threads = 2;
      impl->group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, environment.rank, environment.worldSize, glooOptions);
    }
#  if defined(AGCL_WITH_NCCL)
    else
    {
      auto ncclOptions = c10d::ProcessGroupNCCL::Options::create();
      ncclOptions->timeout = options.timeout;
      impl->group =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, environment.rank, environment.worldSize, ncclOptions);
    }
#  endif
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error("distributed " + where + " failed (did all " + std::to_string(environment.worldSize) +
                             " ranks start, and reach this address within the timeout of " +
                             SecondsText(options.timeout) + "?): " + ErrorText(error));
  }
  auto group = std::shared_ptr<DistributedGroup>(new DistributedGroup(std::move(impl)));
  group->Barrier(); // everybody is there
  group->ResetTraffic();
  return group;
#endif
}

int
DistributedGroup::Rank() const
{
  return m_Impl->environment.rank;
}

int
DistributedGroup::Size() const
{
  return m_Impl->environment.worldSize;
}

const DistributedEnvironment &
DistributedGroup::Environment() const
{
  return m_Impl->environment;
}

const DistributedOptions &
DistributedGroup::Options() const
{
  return m_Impl->options;
}

DistributedGroup::Traffic
DistributedGroup::TrafficSinceReset() const
{
  return m_Impl->traffic;
}

void
DistributedGroup::ResetTraffic()
{
  m_Impl->traffic = Traffic{};
}

namespace {

double
Bytes(const torch::Tensor & t)
{
  return static_cast<double>(t.nbytes());
}

/** The global index of `rank`'s first row, from every rank's row count. */
int64_t
FirstRow(const std::vector<int64_t> & counts, int rank)
{
  int64_t first = 0;
  for (int r = 0; r < rank; ++r)
    first += counts[static_cast<size_t>(r)];
  return first;
}

} // namespace

void
DistributedGroup::AllReduce(std::vector<torch::Tensor> & tensors, Reduction reduction)
{
  for (auto & t : tensors)
  {
    if (!t.defined() || !t.is_contiguous())
      throw std::invalid_argument("DistributedGroup::AllReduce: expected defined, contiguous tensors");
    if (Size() == 1)
      continue;
#if defined(AGCL_WITH_C10D)
    m_Impl->Run("all-reduce", Bytes(t), &Traffic::allReduceBytes, &Traffic::allReduceSeconds, [&]() {
      // One tensor per call: c10d reduces a list's tensors into each other (one per device).
      std::vector<torch::Tensor> one{ m_Impl->NeedsDevice(t) ? t.to(m_Impl->CollectiveDevice()) : t };
      c10d::AllreduceOptions     o;
      o.reduceOp = c10d::ReduceOp::SUM;
      o.timeout = m_Impl->options.timeout;
      m_Impl->group->allreduce(one, o)->wait();
      if (!one[0].is_same(t))
        t.copy_(one[0]);
    });
#endif
    if (reduction == Reduction::Mean)
    {
      torch::NoGradGuard noGrad;
      if (at::isIntegralType(t.scalar_type(), true))
        t.div_(Size(), "floor");
      else
        t.div_(static_cast<double>(Size()));
    }
  }
}

std::vector<int64_t>
DistributedGroup::AllGatherCounts(int64_t count)
{
  if (Size() == 1)
    return { count };
  std::vector<int64_t> counts(static_cast<size_t>(Size()));
#if defined(AGCL_WITH_C10D)
  // NCCL gathers device tensors only.
  const torch::Device        device = m_Impl->CollectiveDevice();
  std::vector<torch::Tensor> in{ torch::full({ 1 }, count, torch::TensorOptions().dtype(torch::kLong).device(device)) };
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < Size(); ++r)
    out[0].push_back(torch::empty_like(in[0]));
  m_Impl->Run("all-gather (row counts)", 8.0 * Size(), &Traffic::allGatherBytes, &Traffic::allGatherSeconds, [&]() {
    m_Impl->group->allgather(out, in)->wait();
  });
  for (int r = 0; r < Size(); ++r)
    counts[static_cast<size_t>(r)] = out[0][static_cast<size_t>(r)].cpu().item<int64_t>();
#endif
  return counts;
}

torch::Tensor
DistributedGroup::AllGather(const torch::Tensor & local, const std::vector<int64_t> & knownCounts)
{
  if (!local.defined() || local.dim() < 1)
    throw std::invalid_argument("DistributedGroup::AllGather: expected a defined tensor with at least one dimension");
  if (!knownCounts.empty() &&
      (knownCounts.size() != static_cast<size_t>(Size()) || knownCounts[static_cast<size_t>(Rank())] != local.size(0)))
    throw std::invalid_argument("DistributedGroup::AllGather: " + std::to_string(knownCounts.size()) +
                                " row counts given for " + std::to_string(Size()) +
                                " ranks, or not this rank's row count " + std::to_string(local.size(0)));
  torch::NoGradGuard noGrad;
  if (Size() == 1)
    return local.detach().clone();
#if !defined(AGCL_WITH_C10D)
  throw std::logic_error("unreachable: a distributed group without c10d");
#else
  // Row counts first (they may differ), then every rank's rows padded to the largest count.
  const std::vector<int64_t> counts = knownCounts.empty() ? AllGatherCounts(local.size(0)) : knownCounts;
  const int64_t              largest = *std::max_element(counts.begin(), counts.end());
  std::vector<int64_t>       shape = local.sizes().vec();
  shape[0] = largest;
  torch::Tensor padded = torch::zeros(
    shape, local.options().device(m_Impl->NeedsDevice(local) ? m_Impl->CollectiveDevice() : local.device()));
  padded.narrow(0, 0, local.size(0)).copy_(local);
  std::vector<torch::Tensor>              in{ padded };
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < Size(); ++r)
    out[0].push_back(torch::empty_like(padded));
  m_Impl->Run("all-gather", Bytes(padded) * Size(), &Traffic::allGatherBytes, &Traffic::allGatherSeconds, [&]() {
    m_Impl->group->allgather(out, in)->wait();
  });
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < Size(); ++r)
    parts.push_back(out[0][static_cast<size_t>(r)].narrow(0, 0, counts[static_cast<size_t>(r)]));
  return torch::cat(parts).to(local.device());
#endif
}

void
DistributedGroup::Broadcast(std::vector<torch::Tensor> & tensors, int root)
{
  if (root < 0 || root >= Size())
    throw std::invalid_argument("DistributedGroup::Broadcast: root " + std::to_string(root) + " is not a rank of " +
                                std::to_string(Size()));
  for (auto & t : tensors)
  {
    if (!t.defined() || !t.is_contiguous())
      throw std::invalid_argument("DistributedGroup::Broadcast: expected defined, contiguous tensors");
    if (Size() == 1)
      continue;
#if defined(AGCL_WITH_C10D)
    m_Impl->Run("broadcast", Bytes(t), &Traffic::broadcastBytes, &Traffic::broadcastSeconds, [&]() {
      std::vector<torch::Tensor> one{ m_Impl->NeedsDevice(t) ? t.to(m_Impl->CollectiveDevice()) : t };
      c10d::BroadcastOptions     o;
      o.rootRank = root;
      o.timeout = m_Impl->options.timeout;
      m_Impl->group->broadcast(one, o)->wait();
      if (!one[0].is_same(t))
        t.copy_(one[0]);
    });
#endif
  }
}

void
DistributedGroup::Barrier()
{
  if (Size() == 1)
    return;
#if defined(AGCL_WITH_C10D)
  // A barrier as a one-element all-reduce: Gloo's barrier has no per-call timeout.
  std::vector<torch::Tensor> one{ torch::zeros({ 1 }) }; // (staged through the GPU under NCCL)
  AllReduce(one);
#endif
}

namespace {

/** Forward: the ranks' rows concatenated; backward: the gathered gradient summed over the
 *  ranks, this rank's rows kept. */
struct AllGatherFunction : public torch::autograd::Function<AllGatherFunction>
{
  static torch::Tensor
  forward(torch::autograd::AutogradContext * ctx,
          const torch::Tensor &              local,
          DistributedGroup *                 group,
          std::vector<int64_t>               counts)
  {
    if (counts.empty())
      counts = group->AllGatherCounts(local.size(0));
    const torch::Tensor all = group->AllGather(local.contiguous(), counts); // (checks the counts)
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    ctx->saved_data["offset"] = FirstRow(counts, group->Rank());
    ctx->saved_data["rows"] = local.size(0);
    return all;
  }

  static torch::autograd::variable_list
  backward(torch::autograd::AutogradContext * ctx, torch::autograd::variable_list gradients)
  {
    auto *                     group = reinterpret_cast<DistributedGroup *>(ctx->saved_data["group"].toInt());
    std::vector<torch::Tensor> whole{ gradients[0].contiguous().clone() };
    group->AllReduce(whole, Reduction::Sum);
    return { whole[0].narrow(0, ctx->saved_data["offset"].toInt(), ctx->saved_data["rows"].toInt()),
             torch::Tensor(),
             torch::Tensor() };
  }
};

} // namespace

torch::Tensor
AllGatherWithGradient(const torch::Tensor & local, DistributedGroup & group, const std::vector<int64_t> & counts)
{
  if (!local.defined() || local.dim() < 1)
    throw std::invalid_argument("AllGatherWithGradient: expected a defined tensor with at least one dimension");
  if (group.Size() == 1)
    return local;
  return AllGatherFunction::apply(local, &group, counts);
}

void
AllReduceTensors(const std::vector<torch::Tensor> & tensors, DistributedGroup & group, Reduction reduction)
{
  if (group.Size() == 1)
    return;
  torch::NoGradGuard noGrad;
  // Buckets of one dtype and device, in the given order (the same on every rank).
  const size_t limit = group.Options().bucketBytes;
  size_t       i = 0;
  while (i < tensors.size())
  {
    const auto options = tensors[i].options();
    size_t     end = i, bytes = 0;
    while (end < tensors.size() && tensors[end].scalar_type() == options.dtype().toScalarType() &&
           tensors[end].device() == options.device() &&
           (end == i || bytes + static_cast<size_t>(Bytes(tensors[end])) <= limit))
    {
      bytes += static_cast<size_t>(Bytes(tensors[end]));
      ++end;
    }
    std::vector<torch::Tensor> flat;
    for (size_t k = i; k < end; ++k)
      flat.push_back(tensors[k].reshape({ -1 }));
    std::vector<torch::Tensor> bucket{ torch::cat(flat) };
    group.AllReduce(bucket, reduction);
    int64_t at = 0;
    for (size_t k = i; k < end; ++k)
    {
      torch::Tensor t = tensors[k];
      t.copy_(bucket[0].narrow(0, at, t.numel()).view(t.sizes()));
      at += t.numel();
    }
    i = end;
  }
}

void
AllReduceGradients(const std::vector<torch::Tensor> & parameters, DistributedGroup & group, Reduction reduction)
{
  if (group.Size() == 1)
    return;
  std::vector<torch::Tensor> gradients;
  for (const torch::Tensor & p : parameters)
  {
    if (!p.grad().defined())
      torch::Tensor(p).mutable_grad() = torch::zeros_like(p); // takes part with zeros
    gradients.push_back(p.grad());
  }
  AllReduceTensors(gradients, group, reduction);
}

void
BroadcastTensors(const std::vector<torch::Tensor> & tensors, DistributedGroup & group)
{
  if (group.Size() == 1)
    return;
  torch::NoGradGuard noGrad;
  for (const torch::Tensor & t : tensors)
  {
    std::vector<torch::Tensor> one{ t.is_contiguous() ? t.detach() : t.detach().contiguous() };
    group.Broadcast(one, 0);
    if (!t.is_contiguous())
      torch::Tensor(t).detach().copy_(one[0]);
  }
}

std::pair<torch::Tensor, torch::Tensor>
DistributedContrastiveLoss(ConditionalContrastiveLoss & loss,
                           const torch::Tensor &        embeddings,
                           const torch::Tensor &        labels,
                           DistributedGroup &           group)
{
  if (!embeddings.defined() || embeddings.dim() != 2 || !labels.defined() || labels.dim() != 1 ||
      labels.size(0) != embeddings.size(0))
    throw std::invalid_argument("DistributedContrastiveLoss: expected embeddings [n, d] and labels [n], got " +
                                std::string(embeddings.defined() ? c10::str(embeddings.sizes()) : "undefined") +
                                " and " + std::string(labels.defined() ? c10::str(labels.sizes()) : "undefined"));
  // The row counts once, for the embeddings, their labels and this rank's first anchor.
  const std::vector<int64_t> counts = group.AllGatherCounts(embeddings.size(0));
  const torch::Tensor        all = AllGatherWithGradient(embeddings, group, counts);
  const torch::Tensor        allLabels = group.AllGather(labels, counts);
  auto [total, anchors] = loss->anchorSum(all, allLabels, FirstRow(counts, group.Rank()), embeddings.size(0));
  // The global number of anchors with a positive, and the global loss for the log.
  std::vector<torch::Tensor> sums{ torch::stack({ total.detach().to(torch::kDouble), anchors.to(torch::kDouble) }) };
  group.AllReduce(sums, Reduction::Sum);
  const double  globalAnchors = sums[0][1].item<double>(); // (NCCL: a device-to-host read)
  torch::Tensor share = total / std::max(globalAnchors, 1.0);
  torch::Tensor global = (sums[0][0] / std::max(globalAnchors, 1.0)).to(share.scalar_type());
  return { share, global };
}

} // namespace agcl

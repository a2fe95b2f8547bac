/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_Distributed_h
#define agcl_Distributed_h

#include "agcl/ConditionalContrastiveLoss.h"

#include <torch/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agcl {

/** Distributed training on PyTorch's c10d (DESIGN.md, "Layers and data flow";
 *  Documentation/distributed.md).
 *
 *  N cooperating processes ("ranks") find each other through a c10d::TCPStore at
 *  MASTER_ADDR:MASTER_PORT and talk through a c10d process group (Gloo on the CPU, NCCL on
 *  CUDA where the LibTorch build has it). The variables are those torchrun, SLURM launchers
 *  and Kubernetes' PyTorchJob set. Without them a process is one rank of one: exactly the
 *  single-process behaviour. No c10d type appears in this header: a build whose LibTorch lacks
 *  the c10d/Gloo headers compiles it, and Connect then throws (DistributedAvailable() says
 *  which it is). */

/** Whether this build has c10d with Gloo (AGCL_WITH_C10D at build time). */
bool
DistributedAvailable();

/** Whether this build has the NCCL backend (a CUDA LibTorch with ProcessGroupNCCL). */
bool
DistributedNcclAvailable();

/** One rank's place in the job, read from the standard environment. */
struct DistributedEnvironment
{
  int         rank = 0;           ///< RANK: 0..worldSize-1
  int         worldSize = 1;      ///< WORLD_SIZE
  int         localRank = 0;      ///< LOCAL_RANK: 0..localWorldSize-1 (the rank on this machine)
  int         localWorldSize = 1; ///< LOCAL_WORLD_SIZE (ranks on this machine)
  std::string masterAddress;      ///< MASTER_ADDR: host of the store (rank 0's machine)
  int         masterPort = 0;     ///< MASTER_PORT: 1..65535
  bool        agentStore = false; ///< TORCHELASTIC_USE_AGENT_STORE=true: the launcher hosts the store

  bool
  Distributed() const
  {
    return worldSize > 1;
  }
};

/** Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and
 *  TORCHELASTIC_USE_AGENT_STORE through `lookup` (name -> value or nullopt; the process
 *  environment by default). None of RANK, WORLD_SIZE set: one rank of one (nullopt).
 *  Otherwise every value is checked: integers in range (0 <= RANK < WORLD_SIZE,
 *  0 <= LOCAL_RANK < LOCAL_WORLD_SIZE <= WORLD_SIZE, 1 <= MASTER_PORT <= 65535), MASTER_ADDR
 *  and MASTER_PORT required when WORLD_SIZE > 1; LOCAL_RANK/LOCAL_WORLD_SIZE default to
 *  RANK/WORLD_SIZE (one machine). A bad or missing value throws std::invalid_argument naming
 *  the variable, its value and what was expected. */
std::optional<DistributedEnvironment>
ReadDistributedEnvironment(const std::function<std::optional<std::string>(const std::string &)> & lookup = nullptr);

/** Intra-op threads per rank: the machine's cores divided by the ranks on it (at least 1). */
int
ThreadsPerRank(int cores, int localWorldSize);

/** How a reduction combines the ranks' tensors. */
enum class Reduction
{
  Sum,
  Mean
};

struct DistributedOptions
{
  /** "gloo" (CPU tensors) or "nccl" (CUDA tensors, when built with it); "" = gloo. */
  std::string backend;
  /** Bound on the rendezvous and on every collective: a rank that dies or never comes makes
   *  the others throw within about this time, never hang. */
  std::chrono::milliseconds timeout{ std::chrono::seconds(300) };
  /** Gradients are all-reduced in buckets of at most this many bytes (one flat tensor per
   *  bucket and dtype: fewer, larger messages). */
  std::size_t bucketBytes = 25u << 20;
};

/** A connected process group. Every collective is called by every rank in the same order
 *  (a collective that another rank does not join fails after the timeout). Errors (a peer
 *  gone, a timeout, a mismatch) throw std::runtime_error naming this rank and the operation. */
class DistributedGroup
{
public:
  /** Joins the job described by `environment`: rank 0 hosts the TCPStore (every rank is a
   *  client when agentStore), all ranks wait for the others (bounded by options.timeout),
   *  then create the process group. Throws std::invalid_argument for a bad backend,
   *  std::runtime_error when this build has no c10d or the rendezvous fails. */
  static std::shared_ptr<DistributedGroup>
  Connect(const DistributedEnvironment & environment, const DistributedOptions & options = {});

  ~DistributedGroup();
  DistributedGroup(const DistributedGroup &) = delete;
  DistributedGroup &
  operator=(const DistributedGroup &) = delete;

  int
  Rank() const;
  int
  Size() const;
  const DistributedEnvironment &
  Environment() const;
  const DistributedOptions &
  Options() const;

  /** In place, on every rank: the element-wise sum (or mean) over the ranks. */
  void
  AllReduce(std::vector<torch::Tensor> & tensors, Reduction reduction = Reduction::Sum);

  /** Every rank's `local` ([n_r, ...], n_r may differ between ranks, trailing shape and dtype
   *  must agree) concatenated in rank order along dimension 0. No gradient (see
   *  AllGatherWithGradient). `counts`: every rank's n_r when the caller has them already
   *  (AllGatherCounts); empty: gathered here first. */
  torch::Tensor
  AllGather(const torch::Tensor & local, const std::vector<int64_t> & counts = {});

  /** The row count of every rank's tensor (one all-gather of a scalar). */
  std::vector<int64_t>
  AllGatherCounts(int64_t count);

  /** In place: rank `root`'s tensors on every rank. */
  void
  Broadcast(std::vector<torch::Tensor> & tensors, int root = 0);

  /** Waits until every rank has arrived (bounded by the timeout). */
  void
  Barrier();

  /** Bytes and seconds spent in collectives since the last Reset (this rank's view). */
  struct Traffic
  {
    double allReduceBytes = 0, allReduceSeconds = 0;
    double allGatherBytes = 0, allGatherSeconds = 0;
    double broadcastBytes = 0, broadcastSeconds = 0;
  };
  Traffic
  TrafficSinceReset() const;
  void
  ResetTraffic();

  struct Impl;

private:
  explicit DistributedGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_Impl;
};

/** Autograd-aware all-gather: every rank's `local` rows concatenated in rank order (as
 *  DistributedGroup::AllGather). Backward: the gradient of the whole gathered tensor is summed
 *  over the ranks (each rank's loss may use every row) and each rank keeps its own rows, so that
 *  with the ranks' losses summed, every row gets the gradient of the sum (as
 *  torch.distributed.nn.all_gather). Every rank must call backward through it (collectives).
 *  `counts` as for DistributedGroup::AllGather. */
torch::Tensor
AllGatherWithGradient(const torch::Tensor & local, DistributedGroup & group, const std::vector<int64_t> & counts = {});

/** Sums (or averages) `tensors` over the ranks, in place, in flat buckets of at most
 *  group.Options().bucketBytes (runs of one dtype and device, in the given order, which must be
 *  the same on every rank). */
void
AllReduceTensors(const std::vector<torch::Tensor> & tensors,
                 DistributedGroup &                 group,
                 Reduction                          reduction = Reduction::Sum);

/** Sums (or averages) the gradients of `parameters` over the ranks in buckets of
 *  group.Options().bucketBytes (per dtype and device), in place. Parameters without a gradient
 *  on this rank take part with zeros (the ranks must agree on the bucket layout), and get one.
 *  Afterwards every rank holds the same gradients. */
void
AllReduceGradients(const std::vector<torch::Tensor> & parameters,
                   DistributedGroup &                 group,
                   Reduction                          reduction = Reduction::Mean);

/** Rank 0's values of `tensors` (parameters, buffers) on every rank, in place, no gradient. */
void
BroadcastTensors(const std::vector<torch::Tensor> & tensors, DistributedGroup & group);

/** Eq. 3 over the global batch (paper §III-C: more negatives per step). Every rank's
 *  embeddings [n_r, d] and labels [n_r] (modality x organ ids, or patch ids made globally
 *  unique by the caller for SSCL) are all-gathered (with gradient); this rank's anchors are
 *  compared with every rank's rows, and the number of anchors with a positive is summed over
 *  the ranks. Returns {this rank's share: the sum of its anchors' loss_k / the global number of
 *  anchors with a positive, the global loss (detached, the same on every rank)}. The shares
 *  sum to `loss` on the concatenated batch, and so do their gradients once the parameter
 *  gradients are summed over the ranks (AllReduceGradients with Reduction::Sum). */
std::pair<torch::Tensor, torch::Tensor>
DistributedContrastiveLoss(ConditionalContrastiveLoss & loss,
                           const torch::Tensor &        embeddings,
                           const torch::Tensor &        labels,
                           DistributedGroup &           group);

} // namespace agcl

#endif

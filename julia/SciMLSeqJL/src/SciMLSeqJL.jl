"""
    SciMLSeqJL

The Julia side of sciml_seq's Julia engine: two vector fields over a flat
parameter vector, ODE solves with named OrdinaryDiffEq solvers, and gradients
through SciMLSensitivity's adjoints with `Zygote.pullback`.

- `MLPField`: the `TimeMLP` of `sciml_seq.torch` / `sciml_seq.jax`, evaluated
  natively in Julia (the fast path);
- `CallbackField`: any field evaluated outside Julia by two callables (from
  Python: any torch or JAX field), differentiated through its
  `ChainRulesCore.rrule`, whose pullback calls the outside vector-Jacobian
  product.  Each evaluation is a call into Python and the framework.

Python reaches it through juliacall (`sciml_seq.julia.backend`): the `py_*`
functions take and return arrays in Python's (row-major, batch-first) layout.
Julia users call `MLPField`, `CallbackField`, `solve_block` and `gradient_block`
directly.

# Flat parameter layout of `MLPField` (the same as `sciml_seq.host.mlp`)

PyTorch's `nn.Linear` layout, in the order of `TimeMLP.named_parameters()`:

1. for each linear layer `i = 0:depth`: its weight, shape `(out, in)`, flattened
   ROW-major, then its bias `(out,)`; with `"concat"` time conditioning `in`
   includes time as the last input column; widths `features -> hidden -> ... ->
   hidden -> features`;
2. with FiLM, for each hidden layer: a weight `(2hidden, 1)` and a bias
   `(2hidden,)`; the output splits as `[gamma; beta]` and the hidden
   pre-activation `z` becomes `z .* (1 .+ gamma) .+ beta`.

Julia is column-major: the `(out, in)` row-major block of length `out * in` is
`transpose(reshape(block, in, out))`.
"""
module SciMLSeqJL

import ChainRulesCore
import SciMLBase
import SciMLSensitivity
import SpecialFunctions
import Zygote
using OrdinaryDiffEqCore: IController
using OrdinaryDiffEqLowOrderRK: BS3, DP5, Euler, RK4
using OrdinaryDiffEqRosenbrock: Rodas5P
using OrdinaryDiffEqTsit5: Tsit5
using OrdinaryDiffEqVerner: Vern7
using PrecompileTools: @compile_workload, @setup_workload

export MLPField, CallbackField, n_params, param_shapes, solve_block, gradient_block,
    pullback_block, torchdiffeq_controller, SOLVERS

# ----------------------------------------------------------------------------------------
# The vector field
# ----------------------------------------------------------------------------------------

const ACTIVATIONS = (:tanh, :softplus, :relu, :gelu, :silu, :elu)
const TIME_CONDITIONINGS = ("concat", "film", "concat+film")

"""
    MLPField(features, hidden, depth, activation, time_conditioning)

The `TimeMLP` vector field `f(u, p, t)` with the flat parameters `p` (layout in the
module docstring).  `u` is a vector `(features,)` or a matrix `(features, batch)`
whose columns are samples; `t` a scalar.  `activation` is one of `tanh, softplus,
relu, gelu, silu, elu` (as in PyTorch: softplus returns `x` above 20, gelu is the
exact erf form, elu has alpha 1); `time_conditioning` is `"concat"`, `"film"` or
`"concat+film"`.
"""
struct MLPField
    features::Int
    hidden::Int
    depth::Int
    activation::Symbol
    concat::Bool
    film::Bool
end

function MLPField(features::Integer, hidden::Integer, depth::Integer,
        activation::Union{AbstractString, Symbol}, time_conditioning::AbstractString)
    features >= 1 || throw(ArgumentError("features must be >= 1, got $features"))
    hidden >= 1 || throw(ArgumentError("hidden must be >= 1, got $hidden"))
    depth >= 0 || throw(ArgumentError("depth must be >= 0, got $depth"))
    act = Symbol(activation)
    act in ACTIVATIONS ||
        throw(ArgumentError("activation=$activation is unknown; expected one of $ACTIVATIONS"))
    tc = String(time_conditioning)
    tc in TIME_CONDITIONINGS ||
        throw(ArgumentError("time_conditioning=$tc is unknown; expected one of $TIME_CONDITIONINGS"))
    return MLPField(features, hidden, depth, act, occursin("concat", tc), occursin("film", tc))
end

"""
    param_shapes(m::MLPField) -> Vector{Pair{String, Tuple}}

`name => (out, in)` (or `(out,)` for biases) of every parameter, in flat order.
"""
function param_shapes(m::MLPField)
    widths = [m.features; fill(m.hidden, m.depth); m.features]
    shapes = Pair{String, Tuple}[]
    for i in 1:(m.depth + 1)
        push!(shapes, "layers.$(i - 1).weight" => (widths[i + 1], widths[i] + m.concat))
        push!(shapes, "layers.$(i - 1).bias" => (widths[i + 1],))
    end
    if m.film
        for i in 1:m.depth
            push!(shapes, "film.$(i - 1).weight" => (2m.hidden, 1))
            push!(shapes, "film.$(i - 1).bias" => (2m.hidden,))
        end
    end
    return shapes
end

"""Length of the flat parameter vector of `m`."""
n_params(m::MLPField) = sum(prod(last(s)) for s in param_shapes(m))

# Parameters of the linear layers (where the FiLM parameters start), in integer arithmetic
# only: the field calls it, and Zygote must not see array mutation.
function _layer_param_count(m::MLPField)
    c = Int(m.concat)
    m.depth == 0 && return m.features * (m.features + c) + m.features
    first_layer = m.hidden * (m.features + c) + m.hidden
    middle = (m.depth - 1) * (m.hidden * (m.hidden + c) + m.hidden)
    return first_layer + middle + m.features * (m.hidden + c) + m.features
end

_softplus(x) = x > 20 ? x : log1p(exp(x))
_gelu(x) = x * (1 + SpecialFunctions.erf(x / sqrt(2.0))) / 2
_silu(x) = x / (1 + exp(-x))
_elu(x) = x > 0 ? x : expm1(x)
_relu(x) = max(x, zero(x))

function _activate(name::Symbol, z)
    name === :tanh && return tanh.(z)
    name === :softplus && return _softplus.(z)
    name === :relu && return _relu.(z)
    name === :gelu && return _gelu.(z)
    name === :silu && return _silu.(z)
    return _elu.(z)
end

_time_row(x::AbstractVector, t) = fill(t, 1)
_time_row(x::AbstractMatrix, t) = fill(t, 1, size(x, 2))

# The (out, in) row-major block starting after `offset`, as a column-major (out, in) matrix.
_weight(p, offset, n_out, n_in) = transpose(reshape(p[(offset + 1):(offset + n_out * n_in)], n_in, n_out))

function (m::MLPField)(u, p, t)
    x = u
    offset = 0
    film_offset = _layer_param_count(m)
    for i in 1:m.depth
        n_in = (i == 1 ? m.features : m.hidden) + m.concat
        W = _weight(p, offset, m.hidden, n_in)
        b = p[(offset + m.hidden * n_in + 1):(offset + m.hidden * n_in + m.hidden)]
        offset += m.hidden * n_in + m.hidden
        x_in = m.concat ? vcat(x, _time_row(x, t)) : x
        z = W * x_in .+ b
        if m.film
            o = film_offset + (i - 1) * 4m.hidden
            gb = p[(o + 1):(o + 2m.hidden)] .* t .+ p[(o + 2m.hidden + 1):(o + 4m.hidden)]
            z = z .* (1 .+ gb[1:(m.hidden)]) .+ gb[(m.hidden + 1):(2m.hidden)]
        end
        x = _activate(m.activation, z)
    end
    n_in = (m.depth == 0 ? m.features : m.hidden) + m.concat
    W = _weight(p, offset, m.features, n_in)
    b = p[(offset + m.features * n_in + 1):(offset + m.features * n_in + m.features)]
    x_in = m.concat ? vcat(x, _time_row(x, t)) : x
    return W * x_in .+ b
end

"""
    CallbackField(f!, vjp!, features, n_params)

A vector field evaluated outside Julia by two callables that write their results
into the arrays they are given (from Python, `sciml_seq.julia.backend` passes
them: any torch or JAX field, called through the framework):

- `f!(out, t, u, p)`: `out .= f(u, p, t)`;
- `vjp!(du, dp, t, u, p, a)`: `du .= a' * df/du` and `dp .= a' * df/dp` (summed
  over the batch).

`u`, `out`, `a` and `du` are `Matrix{Float64}` of size `(features, batch)`
(columns are samples; its memory is Python's row-major `(batch, features)`), `p`
and `dp` are `Vector{Float64}` of length `n_params`, `t` is a `Float64`; they
are fresh arrays the callables must not keep.  Calling the field calls `f!`; its
`ChainRulesCore.rrule` calls `f!` forward and `vjp!` in the pullback, so Zygote,
and SciMLSensitivity's adjoints with `autojacvec = ZygoteVJP()`, differentiate it
without tracing the callables.  ReverseDiff and solvers that differentiate the
field themselves (the Rosenbrock method `Rodas5P`, by ForwardDiff) cannot:
[`pullback_block`](@ref) refuses `vjp != "zygote"`, and `sciml_seq` refuses both
before calling Julia.
"""
struct CallbackField{F, V}
    f!::F
    vjp!::V
    features::Int
    n_params::Int
end

# A state (vector or matrix) as a fresh (features, batch) Float64 matrix.
_columns(x, features::Int) = Matrix{Float64}(reshape(x, features, :))

function (m::CallbackField)(u, p, t)
    U = _columns(u, m.features)
    out = similar(U)
    m.f!(out, Float64(t), U, Vector{Float64}(p))
    return reshape(out, size(u))
end

function ChainRulesCore.rrule(m::CallbackField, u, p, t)
    U = _columns(u, m.features)
    q = Vector{Float64}(p)
    t64 = Float64(t)
    out = similar(U)
    m.f!(out, t64, U, q)
    function callback_field_pullback(Δ)
        Δ = ChainRulesCore.unthunk(Δ)
        if Δ isa ChainRulesCore.AbstractZero
            return (ChainRulesCore.NoTangent(), ChainRulesCore.ZeroTangent(),
                ChainRulesCore.ZeroTangent(), ChainRulesCore.NoTangent())
        end
        du = similar(U)
        dp = similar(q)
        m.vjp!(du, dp, t64, U, q, _columns(Δ, m.features))
        return (ChainRulesCore.NoTangent(), reshape(du, size(u)), dp, ChainRulesCore.NoTangent())
    end
    return reshape(out, size(u)), callback_field_pullback
end

"""Length of the flat parameter vector of a `CallbackField`."""
n_params(m::CallbackField) = m.n_params

const Field = Union{MLPField, CallbackField}

# ----------------------------------------------------------------------------------------
# Solvers, controller, sensitivity algorithms
# ----------------------------------------------------------------------------------------

"""Named solvers: `name => (constructor, adaptive)`."""
const SOLVERS = Dict{String, Tuple{Any, Bool}}(
    "Tsit5" => (Tsit5, true),
    "Vern7" => (Vern7, true),
    "DP5" => (DP5, true),
    "BS3" => (BS3, true),
    "Rodas5P" => (Rodas5P, true),
    "Euler" => (Euler, false),
    "RK4" => (RK4, false),
)

function _solver(name::AbstractString)
    haskey(SOLVERS, name) ||
        throw(ArgumentError("solver=$name is unknown; expected one of $(sort(collect(keys(SOLVERS))))"))
    return SOLVERS[name]
end

"""
    torchdiffeq_controller(alg) -> NamedTuple

The `solve` keywords for an integral step-size controller with torchdiffeq's
settings: safety factor `gamma = 0.9`, step-size factors clipped to `[0.2, 10]`,
and no steady band (`qsteady_min = qsteady_max = 1`).  OrdinaryDiffEq's default
controller differs, so parity runs set this one.

OrdinaryDiffEqCore has held these settings in three places, and this function
follows whichever the installed version documents:
- v4 (the OrdinaryDiffEq v7 generation): on the controller, `IController(alg; qmin,
  qmax, gamma, qsteady_min, qsteady_max)`;
- releases whose `IController` has fields but no algorithm argument:
  `IController(; qmin, ...)`;
- releases whose `IController` has no fields: `IController()` plus the settings as
  `solve` keywords.
"""
function torchdiffeq_controller(alg)
    settings = (qmin = 0.2, qmax = 10.0, gamma = 0.9, qsteady_min = 1.0, qsteady_max = 1.0)
    fields = fieldnames(IController)
    if :qmax_first_step in fields
        settings = merge(settings, (qmax_first_step = 10.0,))
    end
    if hasmethod(IController, Tuple{typeof(alg)})
        return (controller = IController(alg; settings...),)
    elseif isempty(fields)
        return merge((controller = IController(),), settings)
    end
    return (controller = IController(; settings...),)
end

"""
    sensitivity_algorithm(adjoint, vjp)

`adjoint`: `"interpolating"` (`InterpolatingAdjoint`), `"backsolve"`
(`BacksolveAdjoint(checkpointing = true)`, torchdiffeq's `odeint_adjoint`) or
`"gauss"` (`GaussAdjoint`).  `vjp`: `"zygote"` (`ZygoteVJP()`), `"reversediff"`
(`ReverseDiffVJP(false)`) or `"reversediff_compiled"` (`ReverseDiffVJP(true)`).
"""
function sensitivity_algorithm(adjoint::AbstractString, vjp::AbstractString)
    autojacvec = if vjp == "zygote"
        SciMLSensitivity.ZygoteVJP()
    elseif vjp == "reversediff"
        SciMLSensitivity.ReverseDiffVJP(false)
    elseif vjp == "reversediff_compiled"
        SciMLSensitivity.ReverseDiffVJP(true)
    else
        throw(ArgumentError("vjp=$vjp is unknown; expected zygote, reversediff or reversediff_compiled"))
    end
    adjoint == "interpolating" && return SciMLSensitivity.InterpolatingAdjoint(; autojacvec)
    adjoint == "backsolve" &&
        return SciMLSensitivity.BacksolveAdjoint(; autojacvec, checkpointing = true)
    adjoint == "gauss" && return SciMLSensitivity.GaussAdjoint(; autojacvec)
    throw(ArgumentError("sensealg=$adjoint is unknown; expected interpolating, backsolve or gauss"))
end

function _check_vjp(m::MLPField, vjp::AbstractString)
    # A compiled ReverseDiff tape replays the branches taken when it was recorded.
    if vjp == "reversediff_compiled" && m.activation in (:relu, :softplus, :elu)
        throw(ArgumentError("vjp=reversediff_compiled needs a branch-free field; " *
                            "activation=$(m.activation) branches: use zygote or reversediff"))
    end
    return nothing
end

function _check_vjp(m::CallbackField, vjp::AbstractString)
    # Only Zygote uses the field's rrule; ReverseDiff would trace into the callables.
    vjp == "zygote" ||
        throw(ArgumentError("vjp=$vjp cannot differentiate a CallbackField; use vjp=zygote"))
    return nothing
end

function _solve_kwargs(alg, adaptive::Bool, ts, reltol, abstol, maxiters, tstops, controller;
        dt = nothing, dtmin = nothing, dtmax = nothing)
    kw = (saveat = ts, maxiters = maxiters)
    if !adaptive
        tstops === nothing &&
            throw(ArgumentError("fixed-step solver $(nameof(typeof(alg))) needs tstops (the step grid)"))
        grid = collect(Float64, tstops)
        return merge(kw, (adaptive = false, dt = maximum(diff(grid)), tstops = grid))
    end
    kw = merge(kw, (reltol = reltol, abstol = abstol))
    # The common solver options: first step, smallest and largest step (absent: defaults).
    dt === nothing || (kw = merge(kw, (dt = Float64(dt),)))
    dtmin === nothing || (kw = merge(kw, (dtmin = Float64(dtmin),)))
    dtmax === nothing || (kw = merge(kw, (dtmax = Float64(dtmax),)))
    if controller == "torchdiffeq"
        kw = merge(kw, torchdiffeq_controller(alg))
    elseif controller != "default"
        throw(ArgumentError("controller=$controller is unknown; expected torchdiffeq or default"))
    end
    return kw
end

function _problem(m::Field, u0, p, ts)
    return SciMLBase.ODEProblem{false}(m, u0, (first(ts), last(ts)), p)
end

function _info(sol)
    s = hasproperty(sol, :stats) ? sol.stats : nothing
    stats = s === nothing ? (nf = -1, naccept = -1, nreject = -1) :
            (nf = s.nf, naccept = s.naccept, nreject = s.nreject)
    return (stats = stats, retcode = string(sol.retcode),
        success = SciMLBase.successful_retcode(sol), t_reached = Float64(last(sol.t)))
end

# ----------------------------------------------------------------------------------------
# Solve and gradients (Julia layout: u0 is (features,) or (features, batch))
# ----------------------------------------------------------------------------------------

"""
    solve_block(m, u0, p, ts; solver = "Tsit5", reltol = 1e-6, abstol = 1e-8,
                maxiters = 4096, tstops = nothing, controller = "torchdiffeq",
                dt = nothing, dtmin = nothing, dtmax = nothing)

Solve `du/dt = m(u, p, t)` (`m` an `MLPField` or a `CallbackField`) from `ts[1]`
and save at `ts`.  `dt`, `dtmin`, `dtmax` (adaptive solvers; `nothing`: the
solver's defaults) are the first, smallest and largest step.  Returns
`(ys, stats, retcode, success, t_reached)` with `ys = Array(sol)` of size
`(size(u0)..., length(ts))` and `stats = (nf, naccept, nreject)` from `sol.stats`
(`nf` includes the 2 evaluations of the initial step-size choice).  Fixed-step
solvers (`Euler`, `RK4`) need `tstops`, the grid to step on.
"""
function solve_block(m::Field, u0, p, ts; solver::AbstractString = "Tsit5",
        reltol = 1e-6, abstol = 1e-8, maxiters::Integer = 4096, tstops = nothing,
        controller::AbstractString = "torchdiffeq", dt = nothing, dtmin = nothing,
        dtmax = nothing)
    constructor, adaptive = _solver(solver)
    alg = constructor()
    kw = _solve_kwargs(alg, adaptive, ts, reltol, abstol, maxiters, tstops, controller;
        dt, dtmin, dtmax)
    sol = SciMLBase.solve(_problem(m, u0, p, ts), alg; kw...)
    return merge((ys = Array(sol),), _info(sol))
end

"""
    pullback_block(m, u0, p, ts; sensealg = "interpolating", vjp = "zygote", kwargs...)

`Zygote.pullback` of `(u0, p) -> Array(solve(...))` with the sensitivity
algorithm `sensitivity_algorithm(sensealg, vjp)`.  Returns `(ys, back, info)`;
`back(grad_ys)` returns `(grad_u0, grad_p)` (`nothing` for a zero gradient).
Keywords as in [`solve_block`](@ref).
"""
function pullback_block(m::Field, u0, p, ts; solver::AbstractString = "Tsit5",
        reltol = 1e-6, abstol = 1e-8, maxiters::Integer = 4096, tstops = nothing,
        controller::AbstractString = "torchdiffeq", dt = nothing, dtmin = nothing,
        dtmax = nothing, sensealg::AbstractString = "interpolating",
        vjp::AbstractString = "zygote")
    _check_vjp(m, vjp)
    constructor, adaptive = _solver(solver)
    alg = constructor()
    kw = _solve_kwargs(alg, adaptive, ts, reltol, abstol, maxiters, tstops, controller;
        dt, dtmin, dtmax)
    sense = sensitivity_algorithm(sensealg, vjp)
    prob = _problem(m, u0, p, ts)
    info = Ref{Any}(nothing)
    function solution_array(u0_, p_)
        sol = SciMLBase.solve(prob, alg; u0 = u0_, p = p_, sensealg = sense, kw...)
        ChainRulesCore.ignore_derivatives() do
            info[] = _info(sol)
        end
        return Array(sol)
    end
    ys, back = Zygote.pullback(solution_array, u0, p)
    return ys, back, info[]
end

"""
    gradient_block(m, u0, p, ts, grad_ys; sensealg = "interpolating", vjp = "zygote", kwargs...)

`(ys, grad_u0, grad_p, stats)`: the solve and the pullback of `grad_ys` (same size
as `ys`) to `u0` and `p`.
"""
function gradient_block(m::Field, u0, p, ts, grad_ys; kwargs...)
    ys, back, info = pullback_block(m, u0, p, ts; kwargs...)
    grad_u0, grad_p = back(grad_ys)
    grad_u0 = grad_u0 === nothing ? zero(u0) : grad_u0
    grad_p = grad_p === nothing ? zero(p) : grad_p
    return (ys = ys, grad_u0 = grad_u0, grad_p = grad_p, stats = info.stats)
end

# ----------------------------------------------------------------------------------------
# Python entry points (sciml_seq.julia.backend): batch-first, row-major arrays
# ----------------------------------------------------------------------------------------

"""
    py_field(features, hidden, depth, activation, time_conditioning, t, y, p)

`f(t, y)` for `y` of size `(batch, features)` (Python layout); returns `(batch, features)`.
"""
function py_field(features, hidden, depth, activation, time_conditioning, t, y, p)
    m = MLPField(features, hidden, depth, activation, time_conditioning)
    u = permutedims(Matrix{Float64}(y))
    return permutedims(m(u, Vector{Float64}(p), Float64(t)))
end

"""
    py_forward(features, hidden, depth, activation, time_conditioning, u0, p, ts;
               differentiable = true, kwargs...)

Solve the `MLPField` from `u0` of size `(batch, features)`.  Returns a named tuple
with `ys` `(batch, length(ts), features)` (empty unless `success`), `back` (the
pullback, or `nothing` unless `differentiable`), `nf`, `naccept`, `nreject`,
`success`, `retcode` and `t_reached`.  Keywords as in [`pullback_block`](@ref).
"""
function py_forward(features, hidden, depth, activation, time_conditioning, u0, p, ts;
        kwargs...)
    m = MLPField(features, hidden, depth, activation, time_conditioning)
    return _py_forward(m, u0, p, ts; kwargs...)
end

"""
    py_forward_callback(f!, vjp!, features, n_params, u0, p, ts; differentiable = true,
                        kwargs...)

[`py_forward`](@ref) for a [`CallbackField`](@ref)`(f!, vjp!, features, n_params)`:
the field and its vector-Jacobian product are the Python callables `f!` and `vjp!`.
"""
function py_forward_callback(f!, vjp!, features, n_params, u0, p, ts; kwargs...)
    m = CallbackField(f!, vjp!, Int(features), Int(n_params))
    return _py_forward(m, u0, p, ts; kwargs...)
end

function _py_forward(m::Field, u0, p, ts; differentiable::Bool = true,
        sensealg = "interpolating", vjp = "zygote", tstops = nothing, kwargs...)
    u = permutedims(Matrix{Float64}(u0))
    q = Vector{Float64}(p)
    times = Vector{Float64}(ts)
    grid = tstops === nothing ? nothing : Vector{Float64}(tstops)
    if differentiable
        ys, back, info = pullback_block(m, u, q, times; tstops = grid, sensealg, vjp, kwargs...)
    else
        r = solve_block(m, u, q, times; tstops = grid, kwargs...)
        ys, back, info = r.ys, nothing, r
    end
    ys_py = info.success ? permutedims(ys, (2, 3, 1)) : zeros(0, 0, 0)
    return (ys = ys_py, back = back, nf = info.stats.nf, naccept = info.stats.naccept,
        nreject = info.stats.nreject, success = info.success, retcode = info.retcode,
        t_reached = info.t_reached)
end

"""
    py_backward(back, grad_ys, n_p)

Pull `grad_ys` `(batch, n_times, features)` back through the pullback of
[`py_forward`](@ref) (`n_p` parameters): `(grad_u0 = (batch, features), grad_p)`.
"""
function py_backward(back, grad_ys, n_p::Integer)
    g = permutedims(Array{Float64, 3}(grad_ys), (3, 1, 2))
    grad_u0, grad_p = back(g)
    gu = grad_u0 === nothing ? zeros(size(g, 2), size(g, 1)) : permutedims(Matrix{Float64}(grad_u0))
    gp = grad_p === nothing ? zeros(n_p) : Vector{Float64}(grad_p)
    return (grad_u0 = gu, grad_p = gp)
end

"""
    warmup()

Compile the common paths (Tsit5 forward, and its gradient through each
sensitivity algorithm) on a tiny problem; returns the seconds it took.
"""
function warmup()
    start = time()
    m = MLPField(2, 4, 1, "tanh", "concat")
    p = 0.1 .* sin.(1:n_params(m))
    u0 = [0.3 0.1; -0.2 0.5]
    ts = [0.0, 0.5, 1.0]
    solve_block(m, u0, p, ts)
    for sensealg in ("interpolating", "backsolve", "gauss")
        gradient_block(m, u0, p, ts, ones(2, 2, 3); sensealg)
    end
    return time() - start
end

@setup_workload begin
    m = MLPField(2, 3, 1, "tanh", "concat")
    p = 0.1 .* sin.(1:n_params(m))
    u0 = [0.3 0.1; -0.2 0.5]
    ts = [0.0, 0.5, 1.0]
    @compile_workload begin
        solve_block(m, u0, p, ts)
        solve_block(m, u0[:, 1], p, ts)
    end
end

end # module

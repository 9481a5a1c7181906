# Run with:  julia --project=julia/SciMLSeqJL -e 'using Pkg; Pkg.test()'
using SciMLSeqJL
using SciMLSeqJL: MLPField, CallbackField, n_params, param_shapes, solve_block,
    gradient_block, py_forward, py_forward_callback, py_backward, py_field,
    torchdiffeq_controller
using ForwardDiff
using Test
const Zygote = SciMLSeqJL.Zygote  # a dependency of the package, reached through it

# Row-major (out, in) block starting after `offset`, read element by element.
rowmajor(p, offset, n_out, n_in) = [p[offset + (o - 1) * n_in + i] for o in 1:n_out, i in 1:n_in]

@testset "SciMLSeqJL" begin
    @testset "flat layout (PyTorch Linear, row-major) against a hand computation" begin
        m = MLPField(2, 3, 1, "tanh", "concat+film")
        @test [first(s) for s in param_shapes(m)] ==
              ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
            "film.0.weight", "film.0.bias"]
        @test n_params(m) == (3 * 3 + 3) + (2 * 4 + 2) + (6 + 6)
        p = collect(1.0:n_params(m)) ./ 50
        W0, b0 = rowmajor(p, 0, 3, 3), p[10:12]
        W1, b1 = rowmajor(p, 12, 2, 4), p[21:22]
        film_w, film_b = p[23:28], p[29:34]
        u, t = [0.3, -0.2], 0.7
        gb = film_w .* t .+ film_b
        z = W0 * [u; t] .+ b0
        h = tanh.(z .* (1 .+ gb[1:3]) .+ gb[4:6])
        expected = W1 * [h; t] .+ b1
        @test m(u, p, t) ≈ expected atol = 1e-14
        U = [u [0.1, 0.4]]  # columns are samples
        @test m(U, p, t)[:, 1] ≈ expected atol = 1e-14
        @test m(U, p, t)[:, 2] ≈ m([0.1, 0.4], p, t) atol = 1e-14
        # Python layout: (batch, features) rows
        @test py_field(2, 3, 1, "tanh", "concat+film", t, permutedims(U), p) ≈ permutedims(m(U, p, t))
    end

    @testset "activations and depth 0" begin
        for act in ("tanh", "softplus", "relu", "gelu", "silu", "elu")
            m = MLPField(2, 3, 2, act, "film")
            p = 0.2 .* cos.(1:n_params(m))
            @test all(isfinite, m([0.5, -1.5], p, 0.3))
        end
        m0 = MLPField(2, 5, 0, "tanh", "concat")
        @test n_params(m0) == 2 * 3 + 2
        p0 = collect(1.0:8.0)
        @test m0([1.0, 2.0], p0, 0.5) ≈ rowmajor(p0, 0, 2, 3) * [1.0, 2.0, 0.5] .+ p0[7:8]
    end

    m = MLPField(2, 4, 1, "tanh", "concat+film")
    p = 0.4 .* sin.(1:n_params(m))
    u0 = [0.3 0.1; -0.2 0.5]
    ts = [0.0, 0.4, 1.0]
    w = cos.(reshape(1.0:12.0, 2, 2, 3))
    tight = (reltol = 1e-10, abstol = 1e-12)

    @testset "solve: stats, controller, fixed steps" begin
        r = solve_block(m, u0, p, ts; tight...)
        @test r.success
        @test size(r.ys) == (2, 2, 3)
        @test r.ys[:, :, 1] == u0
        @test r.stats.nf > 0 && r.stats.naccept > 0 && r.stats.nreject >= 0
        kw = torchdiffeq_controller(SciMLSeqJL.Tsit5())
        @test kw.controller isa SciMLSeqJL.IController
        @test solve_block(m, u0, p, ts; controller = "default", tight...).success
        # Euler on a grid equals the explicit loop
        grid = collect(range(0.0, 1.0; length = 11))
        e = solve_block(m, u0, p, [0.0, 1.0]; solver = "Euler", tstops = grid)
        u = copy(u0)
        for k in 1:10
            u = u .+ (grid[k + 1] - grid[k]) .* m(u, p, grid[k])
        end
        @test e.ys[:, :, end] ≈ u atol = 1e-13
        @test e.stats.nf >= 10
    end

    loss(u, q) = sum(w .* solve_block(m, u, q, ts; tight...).ys)
    gu_ref = ForwardDiff.gradient(u -> loss(u, p), u0)
    gp_ref = ForwardDiff.gradient(q -> loss(u0, q), p)

    @testset "gradients against ForwardDiff: $sensealg, $vjp" for sensealg in
                                                                     ("interpolating", "backsolve", "gauss"),
        vjp in ("zygote", "reversediff")

        g = gradient_block(m, u0, p, ts, w; sensealg, vjp, tight...)
        @test g.grad_u0 ≈ gu_ref rtol = 1e-5
        @test g.grad_p ≈ gp_ref rtol = 1e-5
    end

    # The same field evaluated "outside": callables that write in place, as Python's do.
    calls = Ref(0)
    f!(out, t, u, q) = (calls[] += 1; out .= m(u, q, t); nothing)
    function vjp!(du, dq, t, u, q, a)
        _, back = Zygote.pullback((u_, q_) -> m(u_, q_, t), u, q)
        gu, gq = back(a)
        du .= gu
        dq .= gq
        return nothing
    end
    cb = CallbackField(f!, vjp!, 2, n_params(m))

    @testset "CallbackField: the same solve, dt/dtmax, and its rrule" begin
        r = solve_block(cb, u0, p, ts; tight...)
        @test calls[] > 0
        @test r.ys ≈ solve_block(m, u0, p, ts; tight...).ys atol = 1e-12
        capped = solve_block(cb, u0, p, ts; dtmax = 0.01, tight...)
        @test capped.stats.naccept >= 100
        started = solve_block(cb, u0, p, ts; dt = 1e-5, controller = "default", tight...)
        @test started.success
        y, back = Zygote.pullback((u_, q_) -> cb(u_, q_, 0.3), u0, p)
        @test y ≈ m(u0, p, 0.3)
        gu, gq = back(w[:, :, 1])
        eu, eq = Zygote.pullback((u_, q_) -> m(u_, q_, 0.3), u0, p)[2](w[:, :, 1])
        @test gu ≈ eu && gq ≈ eq
        @test_throws ArgumentError gradient_block(cb, u0, p, ts, w; vjp = "reversediff")
    end

    @testset "CallbackField gradients against ForwardDiff: $sensealg" for sensealg in
                                                                            ("interpolating", "backsolve", "gauss")
        g = gradient_block(cb, u0, p, ts, w; sensealg, tight...)
        @test g.grad_u0 ≈ gu_ref rtol = 1e-5
        @test g.grad_p ≈ gp_ref rtol = 1e-5
    end

    @testset "Python entry points (batch-first layout)" begin
        f = py_forward(2, 4, 1, "tanh", "concat+film", permutedims(u0), p, ts; tight...)
        @test f.success
        @test size(f.ys) == (2, 3, 2)  # (batch, n_times, features)
        @test f.ys[1, end, :] ≈ solve_block(m, u0, p, ts; tight...).ys[:, 1, end]
        b = py_backward(f.back, permutedims(w, (2, 3, 1)), n_params(m))
        @test b.grad_u0 ≈ permutedims(gu_ref) rtol = 1e-5
        @test b.grad_p ≈ gp_ref rtol = 1e-5
        c = py_forward_callback(f!, vjp!, 2, n_params(m), permutedims(u0), p, ts; tight...)
        @test c.ys ≈ f.ys atol = 1e-12
        b = py_backward(c.back, permutedims(w, (2, 3, 1)), n_params(m))
        @test b.grad_p ≈ gp_ref rtol = 1e-5
    end
end
